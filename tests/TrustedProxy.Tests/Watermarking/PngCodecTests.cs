using TrustedProxy.Rendering;
using System.Text.Json;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>The PNG reader and writer used for leak tracing, checked against Pillow both ways.</summary>
public sealed class PngCodecTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData(1, 8)]
    [InlineData(1, 16)]
    [InlineData(3, 8)]
    [InlineData(3, 16)]
    public void AWrittenPng_DecodesToTheSameSamples_WithEveryFilter(int channels, int depth)
    {
        var image = Generated(37, 23, channels, depth);
        foreach (PngFilter? filter in new PngFilter?[] { null, PngFilter.None, PngFilter.Sub, PngFilter.Up, PngFilter.Average, PngFilter.Paeth })
        {
            var decoded = PngDecoder.Decode(PngTestImages.Write(image, filter));

            Assert.Equal((image.Width, image.Height, image.Channels, image.BitDepth), (decoded.Width, decoded.Height, decoded.Channels, decoded.BitDepth));
            Assert.Equal(image.Samples, decoded.Samples);
        }
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(3, 16)]
    public void AnInterlacedPng_DecodesLikeTheSameImageWithoutInterlacing(int channels, int depth)
    {
        foreach (var (width, height) in new[] { (1, 1), (3, 2), (9, 17), (40, 33) })
        {
            var image = Generated(width, height, channels, depth);

            Assert.Equal(image.Samples, PngDecoder.Decode(PngTestImages.Interlaced(image)).Samples);
        }
    }

    [Fact]
    public void PngsWrittenByPillow_DecodeToPillowsOwnSamples()
    {
        // Every colour type and the bit depths Pillow writes: grey 1/8/16, RGB, palette (colour and grey), grey+alpha, RGBA.
        const string script = """
            import json, sys
            import numpy as np
            from PIL import Image
            out = {}
            rng = np.random.default_rng(5)
            h, w = 19, 27
            def save(name, image, expected):
                path = f"{sys.argv[1]}/{name}.png"
                image.save(path)
                out[name] = {"path": path, "samples": [int(v) for v in np.asarray(expected).reshape(-1)]}
            grey8 = rng.integers(0, 256, (h, w), dtype=np.uint8)
            save("L", Image.fromarray(grey8), grey8)
            grey16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
            save("I16", Image.fromarray(grey16), grey16)
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            save("RGB", Image.fromarray(rgb), rgb)
            rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
            save("RGBA", Image.fromarray(rgba, "RGBA"), rgba[..., :3])
            la = Image.fromarray(grey8).convert("LA")
            save("LA", la, grey8)
            palette = Image.fromarray(rgb).quantize(colors=13)
            save("P", palette, np.asarray(palette.convert("RGB")))
            small = Image.fromarray((grey8 // 64 * 85).astype(np.uint8)).convert("P")
            save("Pgrey", small, np.asarray(small.convert("L")))
            bits = Image.fromarray(grey8 > 127)
            save("1", bits, (grey8 > 127).astype(np.uint8))
            json.dump(out, sys.stdout)
            """;
        var cases = JsonSerializer.Deserialize<Dictionary<string, PillowCase>>(PythonOracle.Run(script, _directory.Path), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

        Assert.Equal(8, cases.Count);
        foreach (var (name, expected) in cases)
        {
            var decoded = PngDecoder.Decode(File.ReadAllBytes(expected.Path));

            Assert.True(expected.Samples.Select(v => (ushort)v).SequenceEqual(decoded.Samples), $"{name}: samples differ");
        }
    }

    [Fact]
    public async Task AStoredValueExport_ReadsInPillow_AsPydicomsStoredValues()
    {
        const string script = """
            import sys, warnings
            warnings.simplefilter("ignore")
            import numpy as np, pydicom
            from PIL import Image
            for dicom, png in zip(sys.argv[1::2], sys.argv[2::2]):
                ds = pydicom.dcmread(dicom)
                a = ds.pixel_array.astype(np.int64)
                if int(ds.PixelRepresentation) == 1:
                    a = a + (1 << (int(ds.BitsStored) - 1))
                b = np.asarray(Image.open(png)).astype(np.int64)
                assert a.shape == b.shape, (dicom, a.shape, b.shape)
                assert (a == b).all(), dicom
            print("ok")
            """;
        var arguments = new List<string>();
        foreach (var name in new[] { "CT_small.dcm", "SC_rgb_jpeg_dcmd.dcm", "image_dfl.dcm", "MR_small_bigendian.dcm" })
        {
            var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, name));
            var png = _directory.File(name + ".png");
            await File.WriteAllBytesAsync(png, StoredValuePng.Encode(PixelImage.FromDicom(file)));
            arguments.Add(Path.Combine(DicomCorpus.TestFiles, name));
            arguments.Add(png);
        }

        Assert.Equal("ok", PythonOracle.Run(script, [.. arguments]).Trim());
    }

    [Fact]
    public async Task AnExport_RecordsItsBitsStored()
    {
        var file = await SyntheticDicom.CreateAsync(new ImageSpec { BitsStored = 12, Signed = true });
        var png = PngDecoder.Decode(StoredValuePng.Encode(PixelImage.FromDicom(file)));

        Assert.Equal(12, StoredValuePng.RecordedBitsStored(png));
        Assert.Equal(16, png.BitDepth);
        Assert.Contains("PixelRepresentation=1", png.Text[StoredValuePng.TextKeyword]);
    }

    [Fact]
    public void DamagedPngs_AreRefused_AndTraceAsNoValidMark()
    {
        var good = PngTestImages.Write(Generated(20, 20, 1, 8));
        var flipped = (byte[])good.Clone();
        flipped[^20] ^= 0x10;
        var damaged = new[] { flipped, good[..^30], good[8..], new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' } };
        using var watermarker = WatermarkTesting.Watermarker();

        foreach (var png in damaged)
        {
            Assert.Throws<FormatException>(() => PngDecoder.Decode(png));
            Assert.Equal(TraceStatus.NoValidMark, watermarker.TracePng(png).Status);
        }
    }

    [Fact]
    public void AnImageTooLargeToHold_IsRefusedBeforeAllocating()
    {
        var png = PngTestImages.Write(Generated(4, 4, 1, 8));
        // IHDR width and height sit at bytes 16..23; rewrite them and fix the chunk's CRC.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 1 << 20);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 1 << 20);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), PngChunks.Crc(png.AsSpan(12, 17)));

        var error = Assert.Throws<FormatException>(() => PngDecoder.Decode(png));
        Assert.Contains("outside the sizes", error.Message);
    }

    [Theory]
    [InlineData(16384, 16384, 0, 8)]
    [InlineData(8192, 8192, 2, 16)]
    [InlineData(16384, 16384, 0, 8, 1)]
    public void ATinyPngClaimingAHugeImage_IsRefusedQuickly_WithoutAllocatingWhatItClaims(int width, int height, int colourType, int depth, int interlace = 0)
    {
        // About 70 bytes whose header claims up to 2^28 samples (the most read here) and whose
        // image data inflates to a few hundred zeros: the decoder must find out from the data.
        var png = ClaimingPng(width, height, colourType, depth, interlace, new byte[300]);
        Assert.True(png.Length < 100, $"{png.Length} bytes");

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<FormatException>(() => PngDecoder.Decode(png));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("truncated", error.Message);
        Assert.True(allocated < 16L << 20, $"decoding allocated {allocated:N0} bytes");
    }

    [Fact]
    public void APngWhoseDataStopsShort_IsRefused_HavingHeldOnlyAboutWhatTheDataGave()
    {
        // 3 MiB of real (zero) rows under a header claiming 16384 × 16384: the buffer follows the data.
        var png = ClaimingPng(16384, 16384, 0, 8, 0, new byte[3 << 20]);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<FormatException>(() => PngDecoder.Decode(png));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains($"{3 << 20} of the", error.Message);
        Assert.True(allocated < 16L << 20, $"decoding allocated {allocated:N0} bytes");
    }

    /// <summary>A well-formed PNG (valid CRCs, valid zlib) whose header claims more than <paramref name="rows"/> holds.</summary>
    private static byte[] ClaimingPng(int width, int height, int colourType, int depth, int interlace, byte[] rows)
    {
        using var output = new MemoryStream();
        output.Write(PngChunks.Signature);
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = (byte)depth;
        header[9] = (byte)colourType;
        header[12] = (byte)interlace;
        PngChunks.Write(output, "IHDR", header);
        using var compressed = new MemoryStream();
        using (var zlib = new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
        {
            zlib.Write(rows);
        }

        PngChunks.Write(output, "IDAT", compressed.ToArray());
        PngChunks.Write(output, "IEND", []);
        return output.ToArray();
    }

    private static PngImage Generated(int width, int height, int channels, int depth)
    {
        var random = new Random(width * height + channels + depth);
        var max = (1 << depth) - 1;
        var samples = new ushort[width * height * channels];
        for (var i = 0; i < samples.Length; i++)
        {
            // Smooth with noise, and a few extremes, so that every filter sees carries and borrows.
            samples[i] = (ushort)Math.Clamp((int)(max * (0.5 + 0.4 * Math.Sin(i / 7.0))) + random.Next(-3, 4), 0, max);
            if (random.Next(20) == 0)
            {
                samples[i] = (ushort)(random.Next(2) * max);
            }
        }

        return new PngImage(width, height, channels, depth, samples, new Dictionary<string, string>());
    }

    private sealed record PillowCase(string Path, int[] Samples);
}
