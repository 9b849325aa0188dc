using System.Buffers;
using System.Buffers.Binary;

namespace TrustedProxy.Dicom;

/// <summary>
/// Writes DICOM: the preamble and file meta information, data sets (each in its own encoding; the
/// contents of a UN sequence of undefined length in implicit VR little endian, as PS3.5 6.2.2 says),
/// and, for streaming, single headers and fragments whose values the caller copies in. Lengths of
/// sequences and items encoded with a defined length are computed from their contents.
/// </summary>
public sealed class DicomStreamWriter(Stream output)
{
    private const int FlushThreshold = 256 * 1024;
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);

    public async Task WritePreambleAndMetaAsync(byte[] preamble, DicomDataset meta, CancellationToken cancellationToken = default)
    {
        if (preamble.Length != 128)
        {
            throw new ArgumentException("the preamble is 128 bytes", nameof(preamble));
        }

        _buffer.Write(preamble);
        _buffer.Write("DICM"u8);
        var groupLength = meta.Where(e => e.Tag != DicomTag.FileMetaInformationGroupLength).Sum(e => EncodedSize(e, DicomEncoding.ExplicitLittle));
        foreach (var element in meta)
        {
            // The group length is recomputed; for a file read unchanged it equals the one read (the reader relied on it).
            if (element.Tag == DicomTag.FileMetaInformationGroupLength)
            {
                var value = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(value, (uint)groupLength);
                Encode(DicomElement.Create(element.Tag, DicomVR.UL, value), DicomEncoding.ExplicitLittle);
            }
            else
            {
                Encode(element, DicomEncoding.ExplicitLittle);
            }
        }

        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes every element of a data set in its order, in the data set's encoding.</summary>
    public async Task WriteDatasetAsync(DicomDataset dataset, CancellationToken cancellationToken = default)
    {
        foreach (var element in dataset)
        {
            await WriteElementAsync(element, dataset.Encoding, cancellationToken).ConfigureAwait(false);
        }

        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task WriteElementAsync(DicomElement element, DicomEncoding encoding, CancellationToken cancellationToken = default)
    {
        if (element.IsDeferred)
        {
            throw new InvalidOperationException($"{element.Tag} is deferred: write its header and copy its value from the reader");
        }

        if (element.Sequence is null && element.Fragments is null && element.Value.Length > FlushThreshold)
        {
            WriteHeader(element.Tag, element.VR, (uint)element.Value.Length, encoding);
            await FlushAsync(cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(element.Value, cancellationToken).ConfigureAwait(false);
            return;
        }

        Encode(element, encoding);
        if (_buffer.WrittenCount >= FlushThreshold)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The header of an element whose value the caller writes next (streaming).</summary>
    public async Task WriteHeaderAsync(DicomTag tag, DicomVR vr, uint length, DicomEncoding encoding, CancellationToken cancellationToken = default)
    {
        WriteHeader(tag, vr, length, encoding);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An item header (for a pixel data fragment whose value the caller writes next), or a delimiter.</summary>
    public async Task WriteItemTagAsync(DicomTag tag, uint length, DicomEncoding encoding, CancellationToken cancellationToken = default)
    {
        WriteTag(tag, encoding);
        WriteUInt32(length, encoding);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public Stream Output => output;

    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_buffer.WrittenCount > 0)
        {
            await output.WriteAsync(_buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
            _buffer.ResetWrittenCount();
        }
    }

    /// <summary>Bytes the element takes when encoded (header included).</summary>
    public static long EncodedSize(DicomElement element, DicomEncoding encoding)
    {
        var header = HeaderSize(element.VR, encoding);
        if (element.Sequence is { } sequence)
        {
            var size = header + sequence.Items.Sum(item => 8 + DatasetSize(item.Dataset) + (item.UndefinedLength ? 8 : 0));
            return size + (sequence.UndefinedLength ? 8 : 0);
        }

        if (element.Fragments is { } fragments)
        {
            return header + fragments.Items.Sum(f => 8L + f.Length) + 8;
        }

        return header + element.Value.Length;
    }

    public static long DatasetSize(DicomDataset dataset) => dataset.Sum(e => EncodedSize(e, dataset.Encoding));

    private void Encode(DicomElement element, DicomEncoding encoding)
    {
        if (element.Sequence is { } sequence)
        {
            var length = sequence.UndefinedLength ? DicomToken.UndefinedLength
                : sequence.InconsistentDeclaredLength ?? (uint)(EncodedSize(element, encoding) - HeaderSize(element.VR, encoding));
            WriteHeader(element.Tag, element.VR, length, encoding);
            var contents = ContentEncoding(element, encoding);
            foreach (var item in sequence.Items)
            {
                WriteTag(DicomTag.Item, contents);
                WriteUInt32(item.UndefinedLength ? DicomToken.UndefinedLength : item.InconsistentDeclaredLength ?? (uint)DatasetSize(item.Dataset), contents);
                foreach (var nested in item.Dataset)
                {
                    Encode(nested, item.Dataset.Encoding);
                }

                if (item.UndefinedLength)
                {
                    WriteTag(DicomTag.ItemDelimitation, contents);
                    WriteUInt32(0, contents);
                }
            }

            if (sequence.UndefinedLength)
            {
                WriteTag(DicomTag.SequenceDelimitation, contents);
                WriteUInt32(0, contents);
            }

            return;
        }

        if (element.Fragments is { } fragments)
        {
            WriteHeader(element.Tag, element.VR, DicomToken.UndefinedLength, encoding);
            foreach (var fragment in fragments.Items)
            {
                WriteTag(DicomTag.Item, encoding);
                WriteUInt32((uint)fragment.Length, encoding);
                _buffer.Write(fragment.Span);
            }

            WriteTag(DicomTag.SequenceDelimitation, encoding);
            WriteUInt32(0, encoding);
            return;
        }

        WriteHeader(element.Tag, element.VR, (uint)element.Value.Length, encoding);
        _buffer.Write(element.Value.Span);
    }

    // PS3.5 6.2.2: the items of a UN element of undefined length are implicit VR little endian.
    private static DicomEncoding ContentEncoding(DicomElement element, DicomEncoding encoding) =>
        element.VR == DicomVR.UN && element.Sequence is { UndefinedLength: true } ? DicomEncoding.ImplicitLittle : encoding;

    // Tag (4) + length (4) in implicit VR; tag + VR (2) + length (2), or + reserved (2) + length (4) for the long VRs, in explicit VR.
    private static int HeaderSize(DicomVR vr, DicomEncoding encoding) => !encoding.ImplicitVR && vr.HasLongExplicitLength ? 12 : 8;

    private void WriteHeader(DicomTag tag, DicomVR vr, uint length, DicomEncoding encoding)
    {
        WriteTag(tag, encoding);
        if (encoding.ImplicitVR)
        {
            WriteUInt32(length, encoding);
            return;
        }

        var span = _buffer.GetSpan(2);
        span[0] = vr.First;
        span[1] = vr.Second;
        _buffer.Advance(2);
        if (vr.HasLongExplicitLength)
        {
            _buffer.GetSpan(2)[..2].Clear();
            _buffer.Advance(2);
            WriteUInt32(length, encoding);
        }
        else
        {
            if (length > ushort.MaxValue)
            {
                throw new InvalidOperationException($"{tag} with VR {vr} cannot hold {length} bytes in explicit VR");
            }

            var lengthSpan = _buffer.GetSpan(2);
            if (encoding.BigEndian)
            {
                BinaryPrimitives.WriteUInt16BigEndian(lengthSpan, (ushort)length);
            }
            else
            {
                BinaryPrimitives.WriteUInt16LittleEndian(lengthSpan, (ushort)length);
            }

            _buffer.Advance(2);
        }
    }

    private void WriteTag(DicomTag tag, DicomEncoding encoding)
    {
        var span = _buffer.GetSpan(4);
        if (encoding.BigEndian)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span, tag.Group);
            BinaryPrimitives.WriteUInt16BigEndian(span[2..], tag.Element);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span, tag.Group);
            BinaryPrimitives.WriteUInt16LittleEndian(span[2..], tag.Element);
        }

        _buffer.Advance(4);
    }

    private void WriteUInt32(uint value, DicomEncoding encoding)
    {
        var span = _buffer.GetSpan(4);
        if (encoding.BigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(span, value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span, value);
        }

        _buffer.Advance(4);
    }
}
