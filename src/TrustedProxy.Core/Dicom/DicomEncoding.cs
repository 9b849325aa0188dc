namespace TrustedProxy.Dicom;

/// <summary>How elements are laid out on the wire: VR explicit or implicit, byte order.</summary>
public readonly record struct DicomEncoding(bool ImplicitVR, bool BigEndian)
{
    public static readonly DicomEncoding ExplicitLittle = new(false, false);
    public static readonly DicomEncoding ImplicitLittle = new(true, false);
    public static readonly DicomEncoding ExplicitBig = new(false, true);

    public static DicomEncoding Of(TransferSyntax syntax) => new(syntax.ImplicitVR, syntax.BigEndian);

    public override string ToString() => $"{(ImplicitVR ? "implicit" : "explicit")} VR {(BigEndian ? "big" : "little")} endian";
}
