namespace TrustedProxy.Dicom;

/// <summary>How a data set is encoded on the wire, as named by (0002,0010).</summary>
public sealed record TransferSyntax(string Uid, bool ImplicitVR, bool BigEndian, bool Deflated, bool Encapsulated)
{
    public const string ImplicitVRLittleEndianUid = "1.2.840.10008.1.2";
    public const string ExplicitVRLittleEndianUid = "1.2.840.10008.1.2.1";
    public const string DeflatedExplicitVRLittleEndianUid = "1.2.840.10008.1.2.1.99";
    public const string ExplicitVRBigEndianUid = "1.2.840.10008.1.2.2";

    public static TransferSyntax ImplicitVRLittleEndian { get; } = new(ImplicitVRLittleEndianUid, true, false, false, false);

    public static TransferSyntax ExplicitVRLittleEndian { get; } = new(ExplicitVRLittleEndianUid, false, false, false, false);

    /// <summary>
    /// Every transfer syntax other than the three native ones and deflate is explicit VR little
    /// endian with encapsulated pixel data (PS3.5 A.4), including ones this proxy has never heard of.
    /// </summary>
    public static TransferSyntax FromUid(string uid) => uid switch
    {
        ImplicitVRLittleEndianUid => ImplicitVRLittleEndian,
        ExplicitVRLittleEndianUid => ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndianUid => new(uid, false, false, true, false),
        ExplicitVRBigEndianUid => new(uid, false, true, false, false),
        _ => new(uid, false, false, false, true),
    };
}
