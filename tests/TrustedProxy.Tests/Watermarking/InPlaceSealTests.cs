using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>
/// Ingest seals native pixels in the upload buffer itself instead of re-encoding the file: the
/// result must be byte for byte what sealing a parsed copy and writing it out gives.
/// </summary>
public sealed class InPlaceSealTests
{
    private static readonly SealFields Fields = new("dhabxnd5er4ct6uxl3iojri7oq", "St Olav", DateTimeOffset.FromUnixTimeSeconds(1_790_000_000));

    public static TheoryData<string> LargeImages => new(
        TransferSyntax.ExplicitVRLittleEndianUid, TransferSyntax.ImplicitVRLittleEndianUid, TransferSyntax.ExplicitVRBigEndianUid);

    [Theory]
    [MemberData(nameof(LargeImages))]
    public async Task SealingInPlace_GivesTheFileThatSealingAParsedCopyGives_AndRestoresToTheUpload(string transferSyntax)
    {
        // 3 frames of 160×160 16-bit: Pixel Data well above the 64 KiB the in-place reader leaves in the buffer.
        var upload = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 160, Columns = 160, Frames = 3, TransferSyntax = transferSyntax });
        using var ring = ProxyKeyRing.FromBytes(new byte[ProxyKeyRing.MasterKeyBytes]);
        using var watermarks = new RecordWatermarks(ring, Options.Create(new WatermarkingOptions()), Options.Create(DicomReaderLimits.Default));
        var buffer = upload.ToArray();

        var seal = await watermarks.SealAsync(buffer, buffer.Length, Fields, CancellationToken.None);

        Assert.Equal(RecordSealKind.Pixels, seal.Kind);
        Assert.Same(buffer, seal.Stored);
        var parsed = await DicomFile.ReadAsync(new MemoryStream(upload));
        Assert.True(watermarks.Watermarker.Seal(parsed, Fields).Embedded);
        Assert.Equal(await parsed.ToBytesAsync(), buffer);
        Assert.Equal(upload, await watermarks.VerifyAndRestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, buffer, CancellationToken.None));
    }

    [Fact]
    public async Task TheInPlaceReader_PointsAtThePixelData_AndLeavesCompressedFilesToTheOtherReader()
    {
        var upload = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 200, Columns = 200 });
        var parsed = await DicomFile.ReadAsync(new MemoryStream(upload));
        var pixels = parsed.Dataset.Find(DicomTag.PixelData)!.Value;

        var (file, offset) = (await DicomFile.ReadInPlaceAsync(upload, upload.Length))!.Value;

        Assert.True(upload.AsSpan(offset, pixels.Length).SequenceEqual(pixels.Span));
        Assert.True(file.Dataset.Find(DicomTag.PixelData)!.Value.Span.SequenceEqual(pixels.Span));
        Assert.Equal(upload, await file.ToBytesAsync());

        var compressed = await File.ReadAllBytesAsync(DicomCorpus.WellFormedPart10.First(f => f.IsCompressed && new FileInfo(f.Path).Length > 100_000).Path);
        Assert.Null(await DicomFile.ReadInPlaceAsync(compressed, compressed.Length));
    }
}
