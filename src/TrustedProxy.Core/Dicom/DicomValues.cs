using System.Text;

namespace TrustedProxy.Dicom;

/// <summary>Turning values into text and back, as PS3.5 section 6.2 describes for each VR.</summary>
public static class DicomValues
{
    /// <summary>Decodes a text value: VRs that may hold extended characters use the character set, the rest ASCII; trailing padding removed.</summary>
    public static string DecodeText(ReadOnlySpan<byte> value, DicomVR vr, SpecificCharacterSet characterSet)
    {
        var text = UsesCharacterSet(vr) ? characterSet.Decode(value, isPersonName: vr == DicomVR.PN) : DecodeAscii(value);
        return vr == DicomVR.UI ? text.TrimEnd('\0', ' ') : text.TrimEnd(' ', '\0');
    }

    /// <summary>Bytes outside ASCII are kept as Latin-1 characters so that nothing is lost.</summary>
    public static string DecodeAscii(ReadOnlySpan<byte> value) => System.Text.Encoding.Latin1.GetString(value).TrimEnd('\0', ' ');

    /// <summary>Encodes a text value and pads it to even length: UI with NUL, other VRs with a space.</summary>
    public static byte[] EncodeText(string value, DicomVR vr, SpecificCharacterSet? characterSet = null)
    {
        var bytes = UsesCharacterSet(vr) && characterSet is not null ? characterSet.Encode(value) : System.Text.Encoding.ASCII.GetBytes(value);
        if (bytes.Length % 2 == 1)
        {
            Array.Resize(ref bytes, bytes.Length + 1);
            bytes[^1] = vr == DicomVR.UI ? (byte)0 : (byte)' ';
        }

        return bytes;
    }

    /// <summary>PS3.5 6.1.2.3: only these VRs may carry characters beyond the default repertoire.</summary>
    public static bool UsesCharacterSet(DicomVR vr) =>
        vr == DicomVR.SH || vr == DicomVR.LO || vr == DicomVR.ST || vr == DicomVR.LT || vr == DicomVR.UT || vr == DicomVR.PN || vr == DicomVR.UC;
}
