namespace TrustedProxy.Dicom;

/// <summary>The parts of the file meta information group (0002) the proxy uses.</summary>
public sealed record FileMetaInformation(
    TransferSyntax TransferSyntax,
    string? MediaStorageSopClassUid,
    string? MediaStorageSopInstanceUid,
    byte[] Preamble,
    long DataSetOffset);
