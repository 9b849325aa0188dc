namespace TrustedProxy.Dicom;

/// <summary>The file's preamble and its file meta information group (0002), as read.</summary>
/// <param name="TransferSyntax">How the data set is encoded, from (0002,0010).</param>
/// <param name="MediaStorageSopClassUid">(0002,0002), if present.</param>
/// <param name="MediaStorageSopInstanceUid">(0002,0003), if present.</param>
/// <param name="Preamble">The 128 bytes before "DICM".</param>
/// <param name="DataSetOffset">Where the data set starts in the file.</param>
/// <param name="Elements">Every element of group 0002, values as encoded (explicit VR little endian).</param>
public sealed record FileMetaInformation(
    TransferSyntax TransferSyntax,
    string? MediaStorageSopClassUid,
    string? MediaStorageSopInstanceUid,
    byte[] Preamble,
    long DataSetOffset,
    IReadOnlyList<DicomElement> Elements);
