using System.Runtime.InteropServices;
using System.Security.Cryptography;
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
        await watermarks.RestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, buffer, buffer.Length, CancellationToken.None);
        Assert.Equal(upload, buffer);
    }

    [Theory]
    [MemberData(nameof(LargeImages))]
    public async Task RestoringInPlace_GivesTheUploadInTheStoredBuffer_ParsedOverIt_AndRefusesATamperedOrForeignRecord(string transferSyntax)
    {
        var upload = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 160, Columns = 160, Frames = 3, TransferSyntax = transferSyntax });
        using var ring = ProxyKeyRing.FromBytes(new byte[ProxyKeyRing.MasterKeyBytes]);
        using var watermarks = new RecordWatermarks(ring, Options.Create(new WatermarkingOptions()), Options.Create(DicomReaderLimits.Default));
        var seal = await watermarks.SealAsync(upload.ToArray(), upload.Length, Fields, CancellationToken.None);
        Assert.Equal(RecordSealKind.Pixels, seal.Kind);
        var stored = seal.Stored.AsSpan(0, seal.StoredLength).ToArray();

        // Larger than the stored file, as a pooled buffer is: only the first bytes are the record.
        var buffer = new byte[stored.Length + 1000];
        stored.CopyTo(buffer, 0);
        var parsed = await watermarks.RestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, buffer, stored.Length, CancellationToken.None);

        Assert.Equal(upload, buffer.AsSpan(0, stored.Length).ToArray());
        Assert.True(parsed.PixelDataOffset > 0);
        Assert.True(MemoryMarshal.TryGetArray(parsed.File!.Dataset.Find(DicomTag.PixelData)!.Value, out var window) && window.Array == buffer);
        Assert.Equal(upload, await parsed.File.ToBytesAsync());

        var tampered = stored.ToArray();
        tampered[parsed.PixelDataOffset + 80 * 160 * 2] ^= 0x01;
        var error = await Assert.ThrowsAsync<SealIntegrityException>(() => watermarks.RestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, tampered, tampered.Length, CancellationToken.None));
        Assert.Contains("does not verify", error.Message);

        var foreign = stored.ToArray();
        await Assert.ThrowsAsync<SealIntegrityException>(() => watermarks.RestoreAsync("someotherhandle", seal.Kind, null, seal.OriginalSha256, foreign, foreign.Length, CancellationToken.None));
    }

    [Fact]
    public async Task FingerprintingTheRestoredParse_MarksTheBufferItself_AsFingerprintingAParsedCopyDoes()
    {
        var upload = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 200, Columns = 200 });
        using var ring = ProxyKeyRing.FromBytes(new byte[ProxyKeyRing.MasterKeyBytes]);
        using var watermarks = new RecordWatermarks(ring, Options.Create(new WatermarkingOptions()), Options.Create(DicomReaderLimits.Default));
        var seal = await watermarks.SealAsync(upload.ToArray(), upload.Length, Fields, CancellationToken.None);
        var buffer = seal.Stored.AsSpan(0, seal.StoredLength).ToArray();
        var parsed = await watermarks.RestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, buffer, buffer.Length, CancellationToken.None);
        var mark = new EgressMark("consumer-7", "request-42", DateTimeOffset.FromUnixTimeSeconds(1_790_000_100));

        var (rewritten, refused) = await watermarks.FingerprintAsync(parsed.File!, buffer, buffer.Length, parsed.PixelDataOffset, mark, CancellationToken.None);

        Assert.Null(refused);
        Assert.Null(rewritten);
        var copy = await DicomFile.ReadAsync(new MemoryStream(upload));
        Assert.True(watermarks.Watermarker.Fingerprint(copy, new FingerprintFields(mark.ConsumerId, mark.RequestId, mark.Time)).Embedded);
        Assert.Equal(await copy.ToBytesAsync(), buffer);
        Assert.NotEqual(upload, buffer);
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

    public static TheoryData<string, int> UploadImages
    {
        get
        {
            var data = new TheoryData<string, int>();
            foreach (var syntax in new[] { TransferSyntax.ExplicitVRLittleEndianUid, TransferSyntax.ImplicitVRLittleEndianUid, TransferSyntax.ExplicitVRBigEndianUid })
            {
                // One frame of 160×160 16-bit is below the 64 KiB the reader leaves in the buffer, three are above.
                data.Add(syntax, 1);
                data.Add(syntax, 3);
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(UploadImages))]
    public async Task ReadingAnUploadOnce_GivesTheHeaderReadersHeader_AndTheSealOfAParsedCopy(string transferSyntax, int frames)
    {
        var upload = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 160, Columns = 160, Frames = frames, TransferSyntax = transferSyntax });
        using var ring = ProxyKeyRing.FromBytes(new byte[ProxyKeyRing.MasterKeyBytes]);
        using var watermarks = new RecordWatermarks(ring, Options.Create(new WatermarkingOptions()), Options.Create(DicomReaderLimits.Default));
        var buffer = upload.ToArray();

        var (file, header, offset) = (await DicomFile.ReadUploadAsync(buffer, buffer.Length, DicomReaderLimits.Default))!.Value;
        var seal = await watermarks.SealParsedAsync(file, offset, buffer, buffer.Length, Fields, SHA256.HashData(upload), CancellationToken.None);

        var expectedHeader = await DicomHeader.ReadAsync(new MemoryStream(upload), DicomReaderLimits.Default, CancellationToken.None);
        Assert.Equal(await expectedHeader.ToMetadataFileAsync(), await header.ToMetadataFileAsync());
        Assert.Equal(RecordSealKind.Pixels, seal.Kind);
        var parsed = await DicomFile.ReadAsync(new MemoryStream(upload));
        Assert.True(watermarks.Watermarker.Seal(parsed, Fields).Embedded);
        Assert.Equal(await parsed.ToBytesAsync(), seal.Stored.AsSpan(0, seal.StoredLength).ToArray());
        var stored = seal.Stored.AsSpan(0, seal.StoredLength).ToArray();
        await watermarks.RestoreAsync(Fields.RecordHandle, seal.Kind, null, seal.OriginalSha256, stored, stored.Length, CancellationToken.None);
        Assert.Equal(upload, stored);
    }

    [Fact]
    public async Task OnTheCorpus_ReadingAnUploadOnce_RefusesWhatTheHeaderReaderRefuses_AndGivesTheSameHeader()
    {
        var compared = 0;
        foreach (var corpusFile in DicomCorpus.Files)
        {
            var bytes = await File.ReadAllBytesAsync(corpusFile.Path);
            Exception? byHeaderReader = null;
            Exception? byUploadReader = null;
            DicomHeader? expected = null;
            (DicomFile File, DicomHeader Header, int PixelDataOffset)? read = null;
            try
            {
                expected = await DicomHeader.ReadAsync(new MemoryStream(bytes), DicomReaderLimits.Default, CancellationToken.None);
            }
            catch (Exception e)
            {
                byHeaderReader = e;
            }

            try
            {
                read = await DicomFile.ReadUploadAsync(bytes, bytes.Length, DicomReaderLimits.Default);
            }
            catch (Exception e)
            {
                byUploadReader = e;
            }

            if (read is null && byUploadReader is null)
            {
                continue; // deflated or large compressed pixels: the upload path reads those with the header reader
            }

            Assert.True(byHeaderReader?.GetType() == byUploadReader?.GetType(), $"{corpusFile.Name}: header reader {byHeaderReader?.GetType().Name ?? "reads it"}, upload reader {byUploadReader?.GetType().Name ?? "reads it"}");
            if (expected is not null)
            {
                var (want, got) = (await expected.ToMetadataFileAsync(), await read!.Value.Header.ToMetadataFileAsync());
                Assert.True(want.AsSpan().SequenceEqual(got), $"{corpusFile.Name}: another header");
                compared++;
            }
        }

        Assert.True(compared > 50, $"only {compared} corpus files were compared");
    }
}
