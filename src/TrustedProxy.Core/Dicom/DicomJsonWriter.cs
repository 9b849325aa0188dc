using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;

namespace TrustedProxy.Dicom;

/// <summary>
/// Writes data sets in the DICOM JSON model (PS3.18 Annex F): one object per data set, keyed by
/// the tag as eight uppercase hex digits, each with its VR and its values: strings, numbers for
/// IS/DS and binary numbers, person names as component groups, nested objects for sequence items,
/// base64 for other binary values. Values are interpreted with the element's effective VR.
/// </summary>
public static class DicomJsonWriter
{
    public static void WriteDataset(Utf8JsonWriter writer, DicomDataset dataset, Func<DicomElement, bool>? include = null)
    {
        writer.WriteStartObject();
        foreach (var element in dataset)
        {
            if (element.IsDeferred || element.Tag.Element == 0x0000 || (include is not null && !include(element)))
            {
                continue;
            }

            writer.WritePropertyName(element.Tag.Value.ToString("X8", CultureInfo.InvariantCulture));
            WriteElement(writer, element, dataset);
        }

        writer.WriteEndObject();
    }

    public static byte[] ToJsonArray(IEnumerable<DicomDataset> datasets)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var dataset in datasets)
            {
                WriteDataset(writer, dataset);
            }

            writer.WriteEndArray();
        }

        return buffer.ToArray();
    }

    private static void WriteElement(Utf8JsonWriter writer, DicomElement element, DicomDataset owner)
    {
        var vr = element.Sequence is not null ? DicomVR.SQ : element.EffectiveVR;
        writer.WriteStartObject();
        writer.WriteString("vr", vr.ToString());
        if (element.Sequence is { } sequence)
        {
            if (sequence.Items.Count > 0)
            {
                writer.WriteStartArray("Value");
                foreach (var item in sequence.Items)
                {
                    WriteDataset(writer, item.Dataset);
                }

                writer.WriteEndArray();
            }
        }
        else if (element.Fragments is not null)
        {
            // Encapsulated pixel data is bulk data; the metadata does not carry it.
        }
        else if (!element.Value.IsEmpty)
        {
            WriteValue(writer, element, vr, owner);
        }

        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, DicomElement element, DicomVR vr, DicomDataset owner)
    {
        var span = element.Value.Span;
        var bigEndian = owner.Encoding.BigEndian;
        if (vr == DicomVR.PN)
        {
            writer.WriteStartArray("Value");
            foreach (var name in DicomValues.DecodeText(span, vr, owner.CharacterSet).Split('\\'))
            {
                var groups = name.Split('=');
                writer.WriteStartObject();
                string[] keys = ["Alphabetic", "Ideographic", "Phonetic"];
                for (var i = 0; i < Math.Min(3, groups.Length); i++)
                {
                    if (groups[i].Length > 0)
                    {
                        writer.WriteString(keys[i], groups[i]);
                    }
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            return;
        }

        if (vr == DicomVR.IS || vr == DicomVR.DS)
        {
            writer.WriteStartArray("Value");
            foreach (var value in DicomValues.DecodeText(span, vr, owner.CharacterSet).Split('\\'))
            {
                var trimmed = value.Trim();
                if (trimmed.Length == 0)
                {
                    writer.WriteNullValue();
                }
                else if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
                {
                    if (vr == DicomVR.IS && long.TryParse(trimmed.TrimStart('+'), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                    {
                        writer.WriteNumberValue(integer);
                    }
                    else
                    {
                        writer.WriteNumberValue(number);
                    }
                }
                else
                {
                    // Malformed numbers are passed on as they are rather than dropped.
                    writer.WriteStringValue(trimmed);
                }
            }

            writer.WriteEndArray();
            return;
        }

        if (vr.IsText)
        {
            var text = DicomValues.DecodeText(span, vr, owner.CharacterSet);
            var single = vr == DicomVR.LT || vr == DicomVR.ST || vr == DicomVR.UT || vr == DicomVR.UR;
            writer.WriteStartArray("Value");
            foreach (var value in single ? [text] : text.Split('\\'))
            {
                writer.WriteStringValue(vr == DicomVR.UI || vr == DicomVR.CS || vr == DicomVR.DA || vr == DicomVR.TM || vr == DicomVR.DT || vr == DicomVR.AS ? value.Trim(' ', '\0') : value);
            }

            writer.WriteEndArray();
            return;
        }

        if (vr == DicomVR.AT)
        {
            writer.WriteStartArray("Value");
            for (var i = 0; i + 4 <= span.Length; i += 4)
            {
                var group = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span[i..]) : BinaryPrimitives.ReadUInt16LittleEndian(span[i..]);
                var number = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span[(i + 2)..]) : BinaryPrimitives.ReadUInt16LittleEndian(span[(i + 2)..]);
                writer.WriteStringValue($"{group:X4}{number:X4}");
            }

            writer.WriteEndArray();
            return;
        }

        if (NumberSize(vr) is { } size && span.Length % size == 0)
        {
            writer.WriteStartArray("Value");
            for (var i = 0; i < span.Length; i += size)
            {
                WriteNumber(writer, vr, span.Slice(i, size), bigEndian);
            }

            writer.WriteEndArray();
            return;
        }

        writer.WriteBase64String("InlineBinary", span);
    }

    private static int? NumberSize(DicomVR vr) =>
        vr == DicomVR.US || vr == DicomVR.SS ? 2
        : vr == DicomVR.UL || vr == DicomVR.SL || vr == DicomVR.FL ? 4
        : vr == DicomVR.FD || vr == DicomVR.SV || vr == DicomVR.UV ? 8
        : null;

    private static void WriteNumber(Utf8JsonWriter writer, DicomVR vr, ReadOnlySpan<byte> bytes, bool bigEndian)
    {
        if (vr == DicomVR.US) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(bytes) : BinaryPrimitives.ReadUInt16LittleEndian(bytes));
        else if (vr == DicomVR.SS) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadInt16BigEndian(bytes) : BinaryPrimitives.ReadInt16LittleEndian(bytes));
        else if (vr == DicomVR.UL) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        else if (vr == DicomVR.SL) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadInt32BigEndian(bytes) : BinaryPrimitives.ReadInt32LittleEndian(bytes));
        else if (vr == DicomVR.SV) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadInt64BigEndian(bytes) : BinaryPrimitives.ReadInt64LittleEndian(bytes));
        else if (vr == DicomVR.UV) writer.WriteNumberValue(bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(bytes) : BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        else
        {
            var value = vr == DicomVR.FL
                ? (bigEndian ? BinaryPrimitives.ReadSingleBigEndian(bytes) : BinaryPrimitives.ReadSingleLittleEndian(bytes))
                : (bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(bytes) : BinaryPrimitives.ReadDoubleLittleEndian(bytes));
            if (double.IsFinite(value))
            {
                writer.WriteNumberValue(value);
            }
            else
            {
                writer.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
            }
        }
    }
}
