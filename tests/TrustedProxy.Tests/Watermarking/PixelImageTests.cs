using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

public sealed class PixelImageTests
{
    public static TheoryData<ImageSpec> Formats => new(
        new ImageSpec { BitsAllocated = 8, BitsStored = 8 },
        new ImageSpec { BitsAllocated = 8, BitsStored = 6, HighBit = 6, Signed = true, GarbageOutsideStoredBits = true },
        new ImageSpec { BitsStored = 12, GarbageOutsideStoredBits = true },
        new ImageSpec { BitsStored = 12, HighBit = 15, GarbageOutsideStoredBits = true },
        new ImageSpec { BitsStored = 12, Signed = true, Photometric = "MONOCHROME1", GarbageOutsideStoredBits = true },
        new ImageSpec { BitsStored = 16, Signed = true, TransferSyntax = TransferSyntax.ExplicitVRBigEndianUid },
        new ImageSpec { BitsStored = 16, TransferSyntax = TransferSyntax.ImplicitVRLittleEndianUid },

        // 16-bit samples in the machine's order go 16 at a time; 143 per frame leaves 15 for the one-by-one loop.
        new ImageSpec { Rows = 13, Columns = 11, BitsStored = 12, HighBit = 13, GarbageOutsideStoredBits = true },
        new ImageSpec { Rows = 13, Columns = 11, BitsStored = 10, Signed = true, Frames = 2, GarbageOutsideStoredBits = true },
        new ImageSpec { BitsAllocated = 32, BitsStored = 32 },
        new ImageSpec { BitsAllocated = 32, BitsStored = 32, Signed = true, TransferSyntax = TransferSyntax.ExplicitVRBigEndianUid },
        new ImageSpec { BitsAllocated = 32, BitsStored = 20, HighBit = 27, GarbageOutsideStoredBits = true },
        new ImageSpec { BitsAllocated = 8, BitsStored = 8, Samples = 3, Photometric = "RGB", Frames = 2 },
        new ImageSpec { BitsAllocated = 8, BitsStored = 8, Samples = 3, Planar = true, Photometric = "RGB", Frames = 2 },
        new ImageSpec { BitsStored = 16, Samples = 3, Planar = true, Photometric = "RGB", TransferSyntax = TransferSyntax.ExplicitVRBigEndianUid },
        new ImageSpec { BitsAllocated = 8, BitsStored = 8, Samples = 3, Photometric = "YBR_FULL" });

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task ReadingAFrame_GivesTheStoredValues_AndWritingItBack_GivesTheSameBytes(ImageSpec spec)
    {
        var file = await SyntheticDicom.CreateAsync(spec);
        var image = PixelImage.FromDicom(file);
        var expected = SyntheticDicom.StoredValues(spec);
        var buffer = image.CreateFrameBuffer();
        var written = new byte[image.PixelData.Length];
        var i = 0;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            for (var p = 0; p < image.PixelsPerFrame; p++)
            {
                for (var c = 0; c < image.SamplesPerPixel; c++)
                {
                    Assert.Equal(expected[i++], image.ToStoredValue(buffer.Values[c * image.PixelsPerFrame + p]));
                }
            }

            image.PixelData.Span.CopyTo(written);
            image.WriteFrame(frame, buffer, written);
            Assert.True(written.AsSpan().SequenceEqual(image.PixelData.Span));
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task ChangingStoredValues_KeepsEveryBitOutsideThem(ImageSpec spec)
    {
        var file = await SyntheticDicom.CreateAsync(spec);
        var image = PixelImage.FromDicom(file);
        var buffer = image.CreateFrameBuffer();
        var output = image.PixelData.ToArray();
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            for (var i = 0; i < buffer.Values.Length; i++)
            {
                buffer.Values[i] = buffer.Values[i] == buffer.Max ? buffer.Min : buffer.Values[i] + 1;
            }

            image.WriteFrame(frame, buffer, output);
        }

        var changed = image.WithPixelData(output);
        var shift = image.HighBit - image.BitsStored + 1;
        var mask = image.BitsStored == 32 ? uint.MaxValue : ((1u << image.BitsStored) - 1) << shift;
        for (var s = 0; s < image.FileSamplesPerFrame * image.Frames; s++)
        {
            var before = Raw(image.PixelData.Span, s, image);
            var after = Raw(output, s, image);
            Assert.Equal(before & ~mask, after & ~mask);
            Assert.NotEqual(before & mask, after & mask);
        }

        for (var frame = 0; frame < image.Frames; frame++)
        {
            var original = image.CreateFrameBuffer();
            image.ReadFrame(frame, original);
            changed.ReadFrame(frame, buffer);
            for (var i = 0; i < buffer.Values.Length; i++)
            {
                Assert.Equal(original.Values[i] == original.Max ? original.Min : original.Values[i] + 1, buffer.Values[i]);
            }
        }
    }

    [Fact]
    public void StoredValues_MatchPydicom_ForEveryNativeCorpusImage()
    {
        const string script = """
            import hashlib, json, sys, warnings
            warnings.simplefilter("ignore")
            import numpy as np, pydicom
            out = {}
            for path in sys.argv[1:]:
                ds = pydicom.dcmread(path)
                a = ds.pixel_array.astype(np.int64)
                bits = int(ds.BitsStored); mask = (1 << bits) - 1
                if int(ds.PixelRepresentation) == 1:
                    sign = 1 << (bits - 1)
                    a = ((a & mask) ^ sign) - sign
                else:
                    a = a & mask
                if ds.PhotometricInterpretation == "YBR_FULL_422":
                    a = a[..., 0]   # pydicom upsamples to full YBR; only the luma samples are ours
                out[path] = hashlib.sha256(a.astype("<i8").tobytes()).hexdigest()
            json.dump(out, sys.stdout)
            """;
        var readable = WatermarkTesting.NativeCorpusImages.Where(i => PixelImage.TryFromDicom(i.File, out _, out _)).ToList();
        var paths = readable.Select(i => Path.Combine(DicomCorpus.DataDirectory, i.Name)).ToArray();
        var oracle = JsonSerializer.Deserialize<Dictionary<string, string>>(PythonOracle.Run(script, paths))!;

        Assert.True(readable.Count >= 40, $"only {readable.Count} native images");
        foreach (var (name, file) in readable)
        {
            var image = PixelImage.FromDicom(file);
            var buffer = image.CreateFrameBuffer();
            var values = new byte[8L * image.SamplesPerFrame * image.Frames];
            var at = 0;
            for (var frame = 0; frame < image.Frames; frame++)
            {
                image.ReadFrame(frame, buffer);
                for (var p = 0; p < image.PixelsPerFrame; p++)
                {
                    for (var c = 0; c < image.Channels; c++, at += 8)
                    {
                        BinaryPrimitives.WriteInt64LittleEndian(values.AsSpan(at), image.ToStoredValue(buffer.Values[c * image.PixelsPerFrame + p]));
                    }
                }
            }

            Assert.True(Convert.ToHexStringLower(SHA256.HashData(values)) == oracle[Path.Combine(DicomCorpus.DataDirectory, name)], $"{name}: stored values differ from pydicom's");
        }
    }

    [Fact]
    public async Task CompressedPixelData_IsRefusedAsNotNative_AndTheFileIsUntouched()
    {
        var compressed = DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && f.IsCompressed && !DicomCorpus.KnownBroken.Contains(f.Name)).ToList();
        Assert.NotEmpty(compressed);
        using var watermarker = WatermarkTesting.Watermarker();
        var refused = 0;
        foreach (var entry in compressed)
        {
            var bytes = await File.ReadAllBytesAsync(entry.Path);
            var file = await DicomFile.ReadAsync(new MemoryStream(bytes));
            if (file.Dataset.Find(DicomTag.PixelData) is null)
            {
                continue;
            }

            var result = watermarker.Seal(file, new SealFields("h1", "St Olav", DateTimeOffset.UnixEpoch));

            Assert.False(result.Embedded);
            Assert.Equal(WatermarkRefusalReason.NotNative, result.Refusal!.Reason);
            Assert.Contains(entry.TransferSyntaxUid!, result.Refusal.Message);
            var after = await file.ToBytesAsync();
            Assert.True(bytes.AsSpan().SequenceEqual(after), $"{entry}: the file changed");
            Assert.Equal(SealStatus.NotWatermarkable, watermarker.VerifyAndRestore(file).Status);
            refused++;
        }

        Assert.True(refused >= 10, $"only {refused} compressed images");
    }

    [Theory]
    [InlineData("PALETTE COLOR", 1)]
    [InlineData("YBR_ICT", 3)]
    [InlineData("MONOCHROME2", 3)]
    public async Task PhotometricInterpretationsThatAreNotIntensities_AreRefused(string photometric, int samples)
    {
        var file = await SyntheticDicom.CreateAsync(new ImageSpec { Photometric = photometric, Samples = samples, BitsAllocated = 8, BitsStored = 8 });

        Assert.False(PixelImage.TryFromDicom(file, out _, out var refusal));
        Assert.Equal(WatermarkRefusalReason.UnsupportedLayout, refusal!.Reason);
    }

    [Fact]
    public async Task AOneBitMask_IsRefusedForCapacity_WithTheArithmeticInTheReason()
    {
        var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "liver_1frame.dcm"));

        Assert.False(PixelImage.TryFromDicom(file, out _, out var refusal));
        Assert.Equal(WatermarkRefusalReason.InsufficientCapacity, refusal!.Reason);
        Assert.Contains("about 8 changed pixels in this 512×512 image", refusal.Message);
    }

    [Fact]
    public async Task PixelDataShorterThanItsAttributes_IsRefused()
    {
        var file = await SyntheticDicom.CreateAsync(new ImageSpec());
        var pixel = file.Dataset.Find(DicomTag.PixelData)!;
        file.Dataset.Set(DicomElement.Create(DicomTag.PixelData, pixel.VR, pixel.Value[..^2]));

        Assert.False(PixelImage.TryFromDicom(file, out _, out var refusal));
        Assert.Equal(WatermarkRefusalReason.NoPixelData, refusal!.Reason);
    }

    private static uint Raw(ReadOnlySpan<byte> data, int sample, PixelImage image) => image.BitsAllocated switch
    {
        8 => data[sample],
        16 => image.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(data[(2 * sample)..]) : BinaryPrimitives.ReadUInt16LittleEndian(data[(2 * sample)..]),
        _ => image.BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(data[(4 * sample)..]) : BinaryPrimitives.ReadUInt32LittleEndian(data[(4 * sample)..]),
    };
}
