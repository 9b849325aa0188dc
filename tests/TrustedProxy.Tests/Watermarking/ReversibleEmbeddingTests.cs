using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

public sealed class ReversibleEmbeddingTests
{
    private static readonly SealFields Fields = new("dhabxnd5er4ct6uxl3iojri7oq", "St Olav", DateTimeOffset.FromUnixTimeSeconds(1_790_000_123));

    /// <summary>Every pixel format the issue names, smooth and saturated, in every native encoding.</summary>
    public static TheoryData<ImageSpec> Formats
    {
        get
        {
            var specs = new List<ImageSpec>
            {
                new() { BitsAllocated = 8, BitsStored = 8 },
                new() { BitsAllocated = 8, BitsStored = 8, Signed = true },
                new() { BitsStored = 12 },
                new() { BitsStored = 12, HighBit = 15, GarbageOutsideStoredBits = true },
                new() { BitsStored = 12, Signed = true, GarbageOutsideStoredBits = true },
                new() { BitsStored = 16 },
                new() { BitsStored = 16, Signed = true },
                new() { BitsStored = 10, Photometric = "MONOCHROME1" },
                new() { BitsAllocated = 32, BitsStored = 32 },
                new() { BitsAllocated = 32, BitsStored = 24, Signed = true, GarbageOutsideStoredBits = true },
                new() { BitsAllocated = 8, BitsStored = 8, Samples = 3, Photometric = "RGB" },
                new() { BitsAllocated = 8, BitsStored = 8, Samples = 3, Planar = true, Photometric = "RGB" },
                new() { BitsStored = 16, Samples = 3, Photometric = "RGB" },
                new() { BitsAllocated = 8, BitsStored = 8, Samples = 3, Photometric = "YBR_FULL" },
                new() { BitsStored = 12, Frames = 4 },
                new() { BitsAllocated = 8, BitsStored = 8, Samples = 3, Planar = true, Photometric = "RGB", Frames = 3 },
            };
            var data = new TheoryData<ImageSpec>();
            var seed = 0;
            foreach (var spec in specs)
            {
                foreach (var syntax in new[] { TransferSyntax.ExplicitVRLittleEndianUid, TransferSyntax.ImplicitVRLittleEndianUid, TransferSyntax.ExplicitVRBigEndianUid })
                {
                    foreach (var content in new[] { Content.Smooth, Content.Saturated })
                    {
                        data.Add(spec with { TransferSyntax = syntax, Content = content, Seed = ++seed });
                    }
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public async Task SealThenVerify_RestoresTheOriginalPixels_BitForBit(ImageSpec spec)
    {
        var original = await SyntheticDicom.BuildAsync(spec);
        var file = await DicomFile.ReadAsync(new MemoryStream(original));
        var originalPixels = WatermarkTesting.PixelData(file);
        using var watermarker = WatermarkTesting.Watermarker();

        var sealing = watermarker.Seal(file, Fields);
        Assert.True(sealing.Embedded, $"{spec}: {sealing.Refusal}");
        Assert.False(WatermarkTesting.PixelData(file).AsSpan().SequenceEqual(originalPixels));
        Assert.True(sealing.Statistics!.WorstFramePsnr >= 45, $"{spec}: {sealing.Statistics.WorstFramePsnr:F1} dB");

        // Stored and read back as the proxy would, then checked at retrieval.
        var stored = await DicomFile.ReadAsync(new MemoryStream(await file.ToBytesAsync()));
        var verification = watermarker.VerifyAndRestore(stored, Fields.RecordHandle);

        Assert.Equal(SealStatus.Verified, verification.Status);
        Assert.Equal(Fields.RecordHandle, verification.Seal!.RecordHandle);
        Assert.Equal(watermarker.OriginTag("St Olav"), verification.Seal.OriginTag);
        Assert.Equal(Fields.Time, verification.Seal.Time);
        var after = await stored.ToBytesAsync();
            Assert.True(original.AsSpan().SequenceEqual(after), $"{spec}: the restored file differs from the original");
    }

    [Fact]
    public async Task SaturatedImages_HaveManyPixelsAtTheRangeEnds()
    {
        // The generator really does exercise the overflow handling.
        foreach (var spec in new[] { new ImageSpec { BitsAllocated = 8, BitsStored = 8, Content = Content.Saturated }, new ImageSpec { BitsStored = 12, Signed = true, Content = Content.Saturated } })
        {
            var values = SyntheticDicom.StoredValues(spec);
            long min = spec.Signed ? -(1L << (spec.BitsStored - 1)) : 0, max = spec.Signed ? (1L << (spec.BitsStored - 1)) - 1 : (1L << spec.BitsStored) - 1;
            Assert.True(values.Count(v => v == min) > values.Length / 10, $"{spec}: few pixels at the minimum");
            Assert.True(values.Count(v => v == max) > values.Length / 10, $"{spec}: few pixels at the maximum");
        }

        await Task.CompletedTask;
    }

    [Theory]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(16)]
    public void PixelsThatCouldLeaveTheRange_GoThroughTheLocationMap_AndComeBackExactly(int bits)
    {
        // Salt and pepper: isolated pixels at and next to the minimum and maximum inside smooth
        // texture, where expanding or shifting them would leave the range.
        var frame = new FrameBuffer(96, 96, 1, bits);
        var random = new Random(bits);
        for (var i = 0; i < frame.Values.Length; i++)
        {
            var smooth = (int)(0.3 * frame.Max * Math.Sin(i % 96 / 15.0)) + random.Next(-2, 3);
            frame.Values[i] = random.Next(100) switch { 0 => frame.Min, 1 => frame.Max, 2 => frame.Min + 1, 3 => frame.Max - 1, _ => smooth };
        }

        var original = frame.Clone();
        var keystream = WatermarkTesting.Keystream();
        var report = PredictionErrorExpansion.Embed(frame, WatermarkTesting.Message512, 0, keystream, minimumPsnr: 0);

        Assert.True(report.LocationMapBits > 0, "no location map was needed");
        Assert.True(frame.Values.All(v => v >= frame.Min && v <= frame.Max));
        Assert.True(PredictionErrorExpansion.TryExtract(frame, keystream, out var mark));
        Assert.Equal(WatermarkTesting.Message512, mark.Message);
        Assert.Equal(original.Values, frame.Values);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(16)]
    public void AFlatImage_CarriesTheMark_AtAnyValue(int bits)
    {
        // Prediction-error expansion favours flat images: every prediction error is 0, so "too flat"
        // is never a reason to refuse. At the range ends the mirrored embedding keeps pass A inside
        // the range by itself; pass B, predicted from A's marked pixels, needs a few location-map symbols.
        var keystream = WatermarkTesting.Keystream();
        foreach (var value in new[] { -(1 << (bits - 1)), 0, (1 << (bits - 1)) - 1 })
        {
            var frame = new FrameBuffer(64, 64, 1, bits);
            Array.Fill(frame.Values, value);

            var report = PredictionErrorExpansion.Embed(frame, WatermarkTesting.Message512, 0, keystream, minimumPsnr: 45);

            Assert.True(report.MaxAbsoluteChange <= 2);
            Assert.True(report.Psnr >= 50, $"{report.Psnr:F1} dB");
            Assert.True(PredictionErrorExpansion.TryExtract(frame, keystream, out var mark));
            Assert.Equal(WatermarkTesting.Message512, mark.Message);
            Assert.All(frame.Values, v => Assert.Equal(value, v));
        }
    }

    [Fact]
    public void EveryMessageLength_RoundTrips()
    {
        var keystream = WatermarkTesting.Keystream();
        var spec = new ImageSpec { Rows = 64, Columns = 64, BitsAllocated = 8, BitsStored = 8 };
        var values = SyntheticDicom.StoredValues(spec);
        foreach (var length in new[] { 0, 1, 2, 31, 38, 63, 64, 128, 255 })
        {
            var frame = new FrameBuffer(64, 64, 1, 8);
            for (var i = 0; i < values.Length; i++)
            {
                frame.Values[i] = (int)values[i] - 128;
            }

            var original = frame.Clone();
            var message = WatermarkTesting.Deterministic(length, length);
            PredictionErrorExpansion.Embed(frame, message, 7, keystream, minimumPsnr: 0);

            Assert.True(PredictionErrorExpansion.TryExtract(frame, keystream, out var mark), $"{length} bytes");
            Assert.Equal(7, mark.FrameIndex);
            Assert.Equal(message, mark.Message);
            Assert.Equal(original.Values, frame.Values);
        }
    }

    [Fact]
    public async Task TooSmallImages_AreRefused_AndLeftUntouched()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var cases = new (ImageSpec Spec, WatermarkRefusalReason Reason)[]
        {
            (new ImageSpec { Rows = 16, Columns = 16 }, WatermarkRefusalReason.TooSmall),
            (new ImageSpec { Rows = 4, Columns = 200 }, WatermarkRefusalReason.TooSmall),
            (new ImageSpec { Rows = 6, Columns = 64 }, WatermarkRefusalReason.InsufficientCapacity),
            (new ImageSpec { Rows = 20, Columns = 32, BitsAllocated = 8, BitsStored = 8 }, WatermarkRefusalReason.InsufficientCapacity),
        };
        foreach (var (spec, reason) in cases)
        {
            var bytes = await SyntheticDicom.BuildAsync(spec);
            var file = await DicomFile.ReadAsync(new MemoryStream(bytes));

            var result = watermarker.Seal(file, Fields);

            Assert.False(result.Embedded, spec.ToString());
            Assert.Equal(reason, result.Refusal!.Reason);
            var after = await file.ToBytesAsync();
            Assert.True(bytes.AsSpan().SequenceEqual(after), $"{spec}: the file changed");
        }
    }

    [Fact]
    public async Task ImagesWithNothingPredictable_AreRefusedByTheQualityFloor_AndLeftUntouched()
    {
        // Uniform noise: only a wide expansion threshold finds the capacity, and that costs more than 45 dB allows.
        using var watermarker = WatermarkTesting.Watermarker();
        var bytes = await SyntheticDicom.BuildAsync(new ImageSpec { Rows = 64, Columns = 64, BitsAllocated = 8, BitsStored = 8, Content = Content.Noise });
        var file = await DicomFile.ReadAsync(new MemoryStream(bytes));

        var result = watermarker.Seal(file, Fields);

        Assert.False(result.Embedded);
        Assert.Equal(WatermarkRefusalReason.QualityFloor, result.Refusal!.Reason);
        Assert.Contains("dB", result.Refusal.Message);
        var after = await file.ToBytesAsync();
            Assert.True(bytes.AsSpan().SequenceEqual(after));
    }

    [Fact]
    public async Task TheCapacityEstimate_CoversASeal_WhereOneFits_AndIsZeroWhereNothingCan()
    {
        var ct = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var tiny = await SyntheticDicom.CreateAsync(new ImageSpec { Rows = 16, Columns = 16 });
        var jpeg = await DicomFile.ReadAsync(DicomCorpus.Files.First(f => f.PydicomReads && f.HasPreamble && f.TransferSyntaxUid == "1.2.840.10008.1.2.4.50").Path);

        Assert.True(DicomWatermarker.EstimateCapacity(ct) >= 504);
        Assert.Equal(0, DicomWatermarker.EstimateCapacity(tiny));
        Assert.Equal(0, DicomWatermarker.EstimateCapacity(jpeg));
    }

    [Fact]
    public async Task AMultiFrameImage_CarriesTheMarkInEveryFrame()
    {
        var file = await SyntheticDicom.CreateAsync(new ImageSpec { Frames = 5, BitsStored = 12 });
        var image = PixelImage.FromDicom(file);
        var keystream = WatermarkTesting.Keystream();
        var (marked, reports, refusal) = WatermarkTesting.EmbedEveryFrame(image, WatermarkTesting.Message512, keystream);
        Assert.Null(refusal);
        Assert.Equal(5, reports.Count);

        var buffer = image.CreateFrameBuffer();
        for (var frame = 0; frame < 5; frame++)
        {
            image.WithPixelData(marked!).ReadFrame(frame, buffer);
            Assert.True(PredictionErrorExpansion.TryExtract(buffer, keystream, out var mark));
            Assert.Equal(frame, mark.FrameIndex);
            Assert.Equal(WatermarkTesting.Message512, mark.Message);
        }
    }
}
