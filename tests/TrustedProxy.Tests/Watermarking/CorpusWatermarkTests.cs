using System.Globalization;
using System.Text;
using TrustedProxy.Watermarking;
using Xunit.Abstractions;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>Issue #6's acceptance on pydicom's corpus: every native image round-trips bit for bit, and the quality target holds.</summary>
public sealed class CorpusWatermarkTests(ITestOutputHelper output)
{
    /// <summary>
    /// Native corpus images that are refused, with the reason. Anything else with native Pixel Data
    /// must be marked; those of at least 64×64 at ≥ 45 dB with a 512-bit message. Only the two
    /// 1-bit masks are 64×64 or more: any change to a binary pixel is full-scale, so 45 dB leaves
    /// room for about 8 changed pixels in 512×512, too little for the payload.
    /// </summary>
    private static readonly Dictionary<string, WatermarkRefusalReason> ExpectedRefusals = new()
    {
        // 512×512 segmentation masks, BitsAllocated 1.
        ["test_files/liver_1frame.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["test_files/liver_expb_1frame.dcm"] = WatermarkRefusalReason.InsufficientCapacity,

        // No usable pixel description: NumberOfFrames "1A"; Pixel Data without Rows.
        ["test_files/badVR.dcm"] = WatermarkRefusalReason.NoPixelData,
        ["test_files/nested_priv_SQ.dcm"] = WatermarkRefusalReason.NoPixelData,

        // Too small for the header: 3×3 RGB, 10×10 dose grids (also 15 frames).
        ["test_files/SC_rgb_small_odd.dcm"] = WatermarkRefusalReason.TooSmall,
        ["test_files/rtdose.dcm"] = WatermarkRefusalReason.TooSmall,
        ["test_files/rtdose_1frame.dcm"] = WatermarkRefusalReason.TooSmall,
        ["test_files/rtdose_expb.dcm"] = WatermarkRefusalReason.TooSmall,
        ["test_files/rtdose_expb_1frame.dcm"] = WatermarkRefusalReason.TooSmall,

        // 32×32 8-bit: about 140 message bits of room.
        ["charset_files/chrArab.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrFren.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrFrenMulti.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrGerm.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrGreek.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrH31.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrH32.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrHbrw.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrI2.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrRuss.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrX1.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
        ["charset_files/chrX2.dcm"] = WatermarkRefusalReason.InsufficientCapacity,
    };

    /// <summary>The DICOMDIR test images are all 16×16: the header alone needs 56 pixels of the first and last rows.</summary>
    private const string SixteenBySixteen = "test_files/dicomdirtests/";

    private static WatermarkRefusalReason? ExpectedRefusal(string name) =>
        ExpectedRefusals.TryGetValue(name, out var reason) ? reason : name.StartsWith(SixteenBySixteen, StringComparison.Ordinal) ? WatermarkRefusalReason.TooSmall : null;

    public static TheoryData<string> NativeImages => new(WatermarkTesting.NativeCorpusImages.Select(i => i.Name));

    [Theory]
    [MemberData(nameof(NativeImages))]
    public void EmbedThenRestore_GivesBackOriginalPixels_BitForBit(string name)
    {
        var file = WatermarkTesting.NativeCorpusImages.Single(i => i.Name == name).File;
        var outcome = Run(file);

        if (ExpectedRefusal(name) is { } reason)
        {
            Assert.NotNull(outcome.Refusal);
            Assert.Equal(reason, outcome.Refusal!.Reason);
            return;
        }

        Assert.True(outcome.Refusal is null, $"{name} refused: {outcome.Refusal}");
        Assert.True(outcome.RestoredExactly, $"{name}: restored pixels differ from the original");
        Assert.True(outcome.MessageRecovered, $"{name}: the message read back differs");
        if (outcome.Image!.Rows >= 64 && outcome.Image.Columns >= 64)
        {
            Assert.True(outcome.WorstPsnr >= 45, $"{name}: PSNR {outcome.WorstPsnr:F1} dB < 45 dB");
        }
    }

    [Fact]
    public void TheExpectedRefusals_AreExactlyTheCorpusImagesRefused()
    {
        var names = WatermarkTesting.NativeCorpusImages.Select(i => i.Name).ToHashSet();
        var refused = WatermarkTesting.NativeCorpusImages.Where(i => Run(i.File).Refusal is not null).Select(i => i.Name).ToHashSet();

        Assert.Subset(names, ExpectedRefusals.Keys.ToHashSet());
        Assert.Equal(names.Where(n => ExpectedRefusal(n) is not null).Order(), refused.Order());
        Assert.Equal(31, names.Count(n => n.StartsWith(SixteenBySixteen, StringComparison.Ordinal)));
        // CT_small, ExplVR_BigEnd, the five MR_small encodings, SC_rgb_jpeg_dcmd, SC_ybr_full_422_uncompressed, image_dfl.
        Assert.Equal(10, names.Count - refused.Count);
    }

    [Fact]
    public void TheCorpusTable_ListsPsnrAndCapacity_ForEveryNativeImage()
    {
        var table = new StringBuilder();
        table.AppendLine("| image | size | bits | PSNR (dB) | PSNR, image's own range (dB) | max change | capacity (bits) | Δ A/B | outcome |");
        table.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, file) in WatermarkTesting.NativeCorpusImages)
        {
            var outcome = Run(file);
            var image = outcome.Image;
            var size = image is null ? "–" : $"{image.Rows}×{image.Columns}×{image.SamplesPerPixel}{(image.Frames > 1 ? $" ×{image.Frames} fr" : "")}";
            var bits = image is null ? "–" : $"{image.BitsStored}{(image.Signed ? "s" : "u")}";
            if (outcome.Refusal is { } refusal)
            {
                table.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {size} | {bits} | – | – | – | {outcome.Capacity?.ToString(CultureInfo.InvariantCulture) ?? "–"} | – | refused: {refusal.Reason} ({refusal.Message}) |");
            }
            else
            {
                var r = outcome.Reports;
                var range = ValueRange(image!);
                var ownRange = outcome.WorstPsnr - 20 * Math.Log10(r[0].Peak / Math.Max(1, range));
                table.AppendLine(CultureInfo.InvariantCulture,
                    $"| {name} | {size} | {bits} | {outcome.WorstPsnr:F1} | {ownRange:F1} | {r.Max(x => x.MaxAbsoluteChange)} | {outcome.Capacity} | {r[0].DeltaA}/{r[0].DeltaB} | {(outcome.RestoredExactly ? "bit-exact" : "MISMATCH")} |");
            }
        }

        output.WriteLine(table.ToString());
        if (Environment.GetEnvironmentVariable("TPROXY_WATERMARK_TABLE") is { Length: > 0 } path)
        {
            File.WriteAllText(path, table.ToString());
        }
    }

    private static Outcome Run(TrustedProxy.Dicom.DicomFile file)
    {
        if (!PixelImage.TryFromDicom(file, out var image, out var refusal))
        {
            return new Outcome(null, refusal, [], false, false, null);
        }

        var keystream = WatermarkTesting.Keystream();
        var (marked, reports, embedRefusal) = WatermarkTesting.EmbedEveryFrame(image, WatermarkTesting.Message512, keystream);
        if (embedRefusal is not null)
        {
            var buffer = image.CreateFrameBuffer();
            image.ReadFrame(0, buffer);
            return new Outcome(image, embedRefusal, reports, false, false, PredictionErrorExpansion.EstimateCapacity(buffer));
        }

        var markedImage = image.WithPixelData(marked!);
        var restored = marked!.ToArray();
        var frame = image.CreateFrameBuffer();
        var messages = true;
        for (var f = 0; f < image.Frames; f++)
        {
            markedImage.ReadFrame(f, frame);
            messages &= PredictionErrorExpansion.TryExtract(frame, keystream, out var mark) && mark.FrameIndex == f && mark.Message.AsSpan().SequenceEqual(WatermarkTesting.Message512);
            markedImage.WriteFrame(f, frame, restored);
        }

        var original = image.CreateFrameBuffer();
        image.ReadFrame(0, original);
        return new Outcome(image, null, reports, restored.AsSpan().SequenceEqual(image.PixelData.Span) && !marked.AsSpan().SequenceEqual(image.PixelData.Span), messages, PredictionErrorExpansion.EstimateCapacity(original));
    }

    /// <summary>Largest minus smallest stored value over all frames: the peak of a PSNR relative to what the image really uses.</summary>
    private static double ValueRange(PixelImage image)
    {
        var buffer = image.CreateFrameBuffer();
        long min = long.MaxValue, max = long.MinValue;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            min = Math.Min(min, buffer.Values.Min());
            max = Math.Max(max, buffer.Values.Max());
        }

        return max - min;
    }

    private sealed record Outcome(PixelImage? Image, WatermarkRefusal? Refusal, IReadOnlyList<FrameEmbedReport> Reports, bool RestoredExactly, bool MessageRecovered, int? Capacity)
    {
        public double WorstPsnr => Reports.Min(r => r.Psnr);
    }
}
