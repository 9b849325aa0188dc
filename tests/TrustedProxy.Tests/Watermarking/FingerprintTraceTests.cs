using TrustedProxy.Dicom;
using TrustedProxy.Rendering;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>Egress fingerprints and leak tracing: which copies can be traced, and which transformations lose the mark.</summary>
public sealed class FingerprintTraceTests : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_790_000_500);

    private static readonly FingerprintFields[] Consumers =
    [
        new("st-olav-consumer", "0HN7Q2K3:00000001", Now),
        new("haukeland-consumer", "0HN7Q2K3:00000002", Now.AddSeconds(1)),
        new("ullevaal-research", "0HN7Q2K3:00000003", Now.AddSeconds(2)),
    ];

    private readonly TemporaryDirectory _directory = new();

    /// <summary>Grey 16-bit signed, 16-bit in 64×64, 8-bit, RGB 8-bit, YBR_FULL_422 luma, 12-bit MONOCHROME1 multi-frame.</summary>
    public static TheoryData<string> Images => new(
        "test_files/CT_small.dcm", "test_files/MR_small.dcm", "test_files/image_dfl.dcm", "test_files/SC_rgb_jpeg_dcmd.dcm",
        "test_files/SC_ybr_full_422_uncompressed.dcm", "generated:mono1-12bit");

    public void Dispose() => _directory.Dispose();

    [Theory]
    [MemberData(nameof(Images))]
    public async Task CopiesForThreeConsumers_AreEachTracedToTheirConsumerAndRequest_AlsoAsPng(string name)
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var original = await OriginalAsync(name);
        foreach (var consumer in Consumers)
        {
            var copy = await DicomFile.ReadAsync(new MemoryStream(original));
            var result = watermarker.Fingerprint(copy, consumer);
            Assert.True(result.Embedded, $"{name}: {result.Refusal}");
            var delivered = await DicomFile.ReadAsync(new MemoryStream(await copy.ToBytesAsync()));

            AssertTracedTo(watermarker, consumer, watermarker.Trace(delivered));
            AssertTracedTo(watermarker, consumer, watermarker.TracePng(StoredValuePng.Encode(PixelImage.FromDicom(delivered))));
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public async Task APngWrittenByPillowFromPydicomsPixels_IsTraced(string name)
    {
        // A third party's DICOM → PNG: pydicom's pixel_array saved by Pillow (signed values offset to unsigned; no tEXt chunk).
        const string script = """
            import sys, warnings
            warnings.simplefilter("ignore")
            import numpy as np, pydicom
            from PIL import Image
            ds = pydicom.dcmread(sys.argv[1])
            a = ds.pixel_array.astype(np.int64)
            bits = int(ds.BitsStored)
            if int(ds.PixelRepresentation) == 1:
                a = a + (1 << (bits - 1))
            if ds.PhotometricInterpretation == "YBR_FULL_422":
                a = a[..., 0]
            if a.ndim == 3 and a.shape[-1] != 3:
                a = a[0]
            if a.ndim == 4:
                a = a[0]
            if bits <= 8:
                Image.fromarray(a.astype(np.uint8)).save(sys.argv[2])
            else:
                Image.fromarray(a.astype(np.uint16)).save(sys.argv[2])
            """;
        using var watermarker = WatermarkTesting.Watermarker();
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync(name)));
        Assert.True(watermarker.Fingerprint(copy, Consumers[1]).Embedded);
        var dicomPath = Path.Combine(_directory.Path, "copy.dcm");
        var pngPath = Path.Combine(_directory.Path, "copy.png");
        await File.WriteAllBytesAsync(dicomPath, await copy.ToBytesAsync());

        PythonOracle.Run(script, dicomPath, pngPath);

        AssertTracedTo(watermarker, Consumers[1], watermarker.TracePng(await File.ReadAllBytesAsync(pngPath)));
    }

    [Fact]
    public async Task LosslessReencodings_KeepTheMark()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync("test_files/CT_small.dcm")));
        Assert.True(watermarker.Fingerprint(copy, Consumers[2]).Embedded);
        var image = PixelImage.FromDicom(copy);

        foreach (var filter in Enum.GetValues<PngFilter>())
        {
            AssertTracedTo(watermarker, Consumers[2], watermarker.TracePng(StoredValuePng.Encode(image, filter: filter)));
        }

        // Re-saved by Pillow with optimisation, and interlaced (Adam7) by this test's own writer.
        var pngPath = Path.Combine(_directory.Path, "in.png");
        var outPath = Path.Combine(_directory.Path, "out.png");
        await File.WriteAllBytesAsync(pngPath, StoredValuePng.Encode(image));
        PythonOracle.Run("import sys\nfrom PIL import Image\nImage.open(sys.argv[1]).save(sys.argv[2], optimize=True)", pngPath, outPath);
        AssertTracedTo(watermarker, Consumers[2], watermarker.TracePng(await File.ReadAllBytesAsync(outPath)));
        AssertTracedTo(watermarker, Consumers[2], watermarker.TracePng(PngTestImages.Interlaced(PngDecoder.Decode(StoredValuePng.Encode(image)))));

        // DICOM re-encoded in another transfer syntax: the pixels are the same values.
        var reencoded = await ReencodeAsync(copy, TransferSyntax.ExplicitVRBigEndianUid);
        AssertTracedTo(watermarker, Consumers[2], watermarker.Trace(reencoded));
    }

    [Fact]
    public async Task AGreyImageSavedAsRgb_IsTraced()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync("test_files/image_dfl.dcm")));
        Assert.True(watermarker.Fingerprint(copy, Consumers[0]).Embedded);
        var pngPath = Path.Combine(_directory.Path, "grey.png");
        var rgbPath = Path.Combine(_directory.Path, "rgb.png");
        await File.WriteAllBytesAsync(pngPath, StoredValuePng.Encode(PixelImage.FromDicom(copy)));

        PythonOracle.Run("import sys\nfrom PIL import Image\nImage.open(sys.argv[1]).convert('RGB').save(sys.argv[2])", pngPath, rgbPath);

        AssertTracedTo(watermarker, Consumers[0], watermarker.TracePng(await File.ReadAllBytesAsync(rgbPath)));
    }

    public static TheoryData<string> Destructive => new("windowed 8-bit render", "lossy (JPEG, quality 95)", "one sample in a hundred off by one", "cropped by one column", "downsampled by two");

    [Theory]
    [MemberData(nameof(Destructive))]
    public async Task TransformationsThatChangeTheValues_LoseTheMark(string transformation)
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var name = transformation.Contains("JPEG") ? "test_files/SC_rgb_jpeg_dcmd.dcm" : "test_files/CT_small.dcm";
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync(name)));
        Assert.True(watermarker.Fingerprint(copy, Consumers[0]).Embedded);
        var image = PixelImage.FromDicom(copy);
        var png = PngDecoder.Decode(StoredValuePng.Encode(image));

        byte[] transformed;
        switch (transformation)
        {
            case "windowed 8-bit render":
                transformed = DicomRenderer.RenderPng(copy);
                break;
            case "lossy (JPEG, quality 95)":
                var pngPath = Path.Combine(_directory.Path, "lossless.png");
                var outPath = Path.Combine(_directory.Path, "lossy.png");
                await File.WriteAllBytesAsync(pngPath, StoredValuePng.Encode(image));
                PythonOracle.Run("""
                    import io, sys
                    from PIL import Image
                    buffer = io.BytesIO()
                    Image.open(sys.argv[1]).save(buffer, format="JPEG", quality=95)
                    Image.open(io.BytesIO(buffer.getvalue())).save(sys.argv[2])
                    """, pngPath, outPath);
                transformed = await File.ReadAllBytesAsync(outPath);
                break;
            case "one sample in a hundred off by one":
                var random = new Random(1);
                var noisy = png.Samples.Select(s => random.Next(100) == 0 ? (ushort)(s == 0 ? 1 : s - 1) : s).ToArray();
                transformed = PngTestImages.Write(png with { Samples = noisy });
                break;
            case "cropped by one column":
                transformed = PngTestImages.Write(PngTestImages.Crop(png, 1, 0));
                break;
            default:
                transformed = PngTestImages.Write(PngTestImages.Downsample(png));
                break;
        }

        var trace = watermarker.TracePng(transformed);

        Assert.Equal(TraceStatus.NoValidMark, trace.Status);
    }

    [Fact]
    public async Task AFingerprintedCopy_IsNotASeal()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync("test_files/CT_small.dcm")));
        Assert.True(watermarker.Fingerprint(copy, Consumers[0]).Embedded);

        var verification = watermarker.VerifyAndRestore(copy);

        Assert.Equal(SealStatus.NoMark, verification.Status);
        Assert.Contains("fingerprint", verification.Detail);
    }

    [Fact]
    public async Task UnderAnotherKey_AFingerprintIsNotTraced()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        using var other = WatermarkTesting.Watermarker(WatermarkTesting.OtherKey);
        var copy = await DicomFile.ReadAsync(new MemoryStream(await OriginalAsync("test_files/CT_small.dcm")));
        Assert.True(watermarker.Fingerprint(copy, Consumers[0]).Embedded);

        Assert.Equal(TraceStatus.NoValidMark, other.Trace(copy).Status);
        Assert.Equal(TraceStatus.NoValidMark, other.TracePng(StoredValuePng.Encode(PixelImage.FromDicom(copy))).Status);
    }

    [Fact]
    public async Task SealAtIngest_ThenRestore_ThenFingerprint_ThenTrace_IsTheWholeFlow()
    {
        // Ingest seals; retrieval verifies and restores; egress fingerprints the restored original.
        using var watermarker = WatermarkTesting.Watermarker();
        var original = await OriginalAsync("test_files/CT_small.dcm");
        var stored = await DicomFile.ReadAsync(new MemoryStream(original));
        Assert.True(watermarker.Seal(stored, new SealFields("h42", "St Olav", Now)).Embedded);
        var storedBytes = await stored.ToBytesAsync();

        foreach (var consumer in Consumers)
        {
            var retrieved = await DicomFile.ReadAsync(new MemoryStream(storedBytes));
            Assert.Equal(SealStatus.Verified, watermarker.VerifyAndRestore(retrieved, "h42").Status);
            var restored = await retrieved.ToBytesAsync();
            Assert.True(original.AsSpan().SequenceEqual(restored));
            Assert.True(watermarker.Fingerprint(retrieved, consumer).Embedded);

            AssertTracedTo(watermarker, consumer, watermarker.Trace(await DicomFile.ReadAsync(new MemoryStream(await retrieved.ToBytesAsync()))));
        }
    }

    private static void AssertTracedTo(DicomWatermarker watermarker, FingerprintFields expected, TraceResult trace)
    {
        Assert.True(trace.Status == TraceStatus.Fingerprinted, trace.Detail);
        Assert.Equal(watermarker.ConsumerTag(expected.ConsumerId), trace.Fingerprint!.ConsumerTag);
        Assert.Equal(watermarker.RequestTag(expected.RequestId), trace.Fingerprint.RequestTag);
        Assert.Equal(expected.Time, trace.Fingerprint.Time);
        Assert.NotEqual(watermarker.ConsumerTag(Consumers.First(c => c != expected).ConsumerId), trace.Fingerprint.ConsumerTag);
    }

    private static async Task<byte[]> OriginalAsync(string name) => name == "generated:mono1-12bit"
        ? await SyntheticDicom.BuildAsync(new ImageSpec { BitsStored = 12, Photometric = "MONOCHROME1", Frames = 2, Rows = 128, Columns = 112 })
        : await File.ReadAllBytesAsync(Path.Combine(DicomCorpus.DataDirectory, name));

    private static async Task<DicomFile> ReencodeAsync(DicomFile file, string transferSyntaxUid)
    {
        // Only 16-bit samples need their bytes swapped for big endian.
        var syntax = TransferSyntax.FromUid(transferSyntaxUid);
        var encoding = DicomEncoding.Of(syntax);
        var dataset = new DicomDataset(encoding);
        foreach (var element in file.Dataset.Where(e => e.Sequence is null))
        {
            var value = element.Value.ToArray();
            if (encoding.BigEndian != file.Dataset.Encoding.BigEndian && (element.VR == DicomVR.US || element.Tag == DicomTag.PixelData))
            {
                for (var i = 0; i + 1 < value.Length; i += 2)
                {
                    (value[i], value[i + 1]) = (value[i + 1], value[i]);
                }
            }

            dataset.Set(DicomElement.Create(element.Tag, element.VR, value));
        }

        var meta = new DicomDataset(DicomEncoding.ExplicitLittle, file.Meta.Where(e => e.Tag != DicomTag.TransferSyntaxUid));
        meta.Set(DicomElement.Text(DicomTag.TransferSyntaxUid, DicomVR.UI, transferSyntaxUid));
        var copy = new DicomFile(new byte[128], meta, dataset, syntax);
        return await DicomFile.ReadAsync(new MemoryStream(await copy.ToBytesAsync()));
    }
}
