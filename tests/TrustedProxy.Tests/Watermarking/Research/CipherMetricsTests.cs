using System.Globalization;
using System.Text;
using TrustedProxy.Watermarking.Research;
using Xunit.Abstractions;

namespace TrustedProxy.Tests.Watermarking.Research;

/// <summary>The papers' metrics, checked against their published values, then measured on the cipher.</summary>
public sealed class CipherMetricsTests(ITestOutputHelper output)
{
    private static readonly ChaosFrameShape Image256 = new(256, 256, 1, 8);

    [Fact]
    public void Expectations_MatchWuNoonanAgaian_For8Bits()
    {
        Assert.Equal(99.6094, CipherMetrics.ExpectedNpcr(8), 4);
        Assert.Equal(33.4635, CipherMetrics.ExpectedUaci(8), 4);

        // Wu et al. 2011, tables for 256×256 at α = 0.05.
        Assert.Equal(99.5693, CipherMetrics.NpcrCriticalValue(8, 256 * 256, 0.05), 3);
        var (low, high) = CipherMetrics.UaciCriticalInterval(8, 256 * 256, 0.05);
        Assert.Equal(33.2824, low, 3);
        Assert.Equal(33.6447, high, 3);
    }

    [Fact]
    public void StatisticalHelpers_MatchTabulatedValues()
    {
        Assert.Equal(1.959964, CipherMetrics.InverseNormal(0.975), 5);
        Assert.Equal(-2.326348, CipherMetrics.InverseNormal(0.01), 5);
        Assert.Equal(0.025, CipherMetrics.NormalUpperTail(1.959964), 6);
        Assert.Equal(0.975, CipherMetrics.NormalUpperTail(-1.959964), 6);
        Assert.Equal(293.2478, CipherMetrics.ChiSquareQuantile(255, 0.95), 1);
        Assert.Equal(0.05, CipherMetrics.ChiSquareUpperTail(293.2478, 255), 3);
    }

    [Fact]
    public void NpcrAndUaci_OfKnownImages()
    {
        Assert.Equal(0, CipherMetrics.Npcr([1, 2, 3, 4], [1, 2, 3, 4]));
        Assert.Equal(50, CipherMetrics.Npcr([1, 2, 3, 4], [1, 0, 3, 0]));
        Assert.Equal(100, CipherMetrics.Uaci([0, 0], [255, 255], 8));
        Assert.Equal(100, CipherMetrics.Uaci([0], [4095], 12));
        Assert.Equal(50, CipherMetrics.Uaci([0, 255], [255, 255], 8));
    }

    [Fact]
    public void OnePixelChange_GivesNpcrAbove99Point5AndUaciNearTheTheoreticalValue()
    {
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var plain = ResearchImages.Gradient(Image256);
        foreach (var index in new[] { 0, 128 * 256 + 128, Image256.SampleCount - 1 })
        {
            var result = CipherMetrics.OnePixelDifferential(cipher, plain, Image256, index);
            Assert.True(result.Npcr > 99.5, $"NPCR {result.Npcr} at {index}");
            Assert.True(result.NpcrPasses, $"NPCR {result.Npcr} below N*0.05 {result.NpcrCritical} at {index}");
            Assert.InRange(result.Uaci, 33.0, 33.9);
        }
    }

    [Fact]
    public void AdjacentCorrelation_IsHighInTheGradientAndVanishesInTheCiphertext()
    {
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var plain = ResearchImages.Gradient(Image256);
        var before = CipherMetrics.Correlation(plain, Image256, new Random(1));
        var after = CipherMetrics.Correlation(ResearchImages.Encrypt(cipher, plain, Image256), Image256, new Random(1));
        Assert.True(before.Horizontal > 0.9 && before.Vertical > 0.9 && before.Diagonal > 0.9, before.ToString());
        Assert.True(after.MaxAbsolute < 0.05, after.ToString());
    }

    [Theory]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(16)]
    public void CiphertextHistogram_IsWithinTheChiSquareCriticalValue_WhereThePlaintextIsNot(int bits)
    {
        var shape = new ChaosFrameShape(256, 256, 1, bits);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var plain = ResearchImages.Gradient(shape);
        var before = CipherMetrics.Histogram(plain, bits);
        var after = CipherMetrics.Histogram(ResearchImages.Encrypt(cipher, plain, shape), bits);
        Assert.False(before.IsUniform, before.ToString());
        Assert.True(after.IsUniform, after.ToString());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(255)]
    public void OneBitKeyChange_ChangesMoreThan99PercentOfCiphertextSamples(int bit)
    {
        var plain = ResearchImages.Gradient(Image256);
        var result = CipherMetrics.KeySensitivity(ResearchImages.Key, bit, plain, Image256, new Random(2));
        Assert.True(result.Ciphertexts.Npcr > 99, result.ToString());
        Assert.True(result.WrongKeyDecryption.Npcr > 99, result.ToString());
        Assert.True(result.WrongKeyCorrelation.MaxAbsolute < 0.05, result.ToString());
    }

    /// <summary>Prints the metrics table of docs/chaos-cipher.md (run with --logger "console;verbosity=detailed").</summary>
    [Fact]
    public void MetricsReport_ForTheDesignNote()
    {
        var table = new StringBuilder();
        table.AppendLine("| image | NPCR % (N*0.05) | UACI % (U*0.05 interval) | χ² (critical 0.05) | corr. plain H/V/D | corr. cipher H/V/D | key bit 0: NPCR % / wrong-key NPCR % |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var shape in new[] { Image256, new ChaosFrameShape(256, 256, 1, 12), new ChaosFrameShape(256, 256, 1, 16), new ChaosFrameShape(128, 128, 3, 8) })
        {
            using var cipher = new ChaoticImageCipher(ResearchImages.Key);
            var plain = ResearchImages.Gradient(shape);
            var encrypted = ResearchImages.Encrypt(cipher, plain, shape);
            var differential = CipherMetrics.OnePixelDifferential(cipher, plain, shape, shape.SampleCount / 2);
            var histogram = CipherMetrics.Histogram(encrypted, shape.BitsStored);
            var before = CipherMetrics.Correlation(plain, shape, new Random(1));
            var after = CipherMetrics.Correlation(encrypted, shape, new Random(1));
            var key = CipherMetrics.KeySensitivity(ResearchImages.Key, 0, plain, shape, new Random(2));
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {shape.Width}×{shape.Height}×{shape.SamplesPerPixel}, {shape.BitsStored}-bit gradient " +
                $"| {differential.Npcr:F4} ({differential.NpcrCritical:F4}) " +
                $"| {differential.Uaci:F4} ([{differential.UaciLow:F4}, {differential.UaciHigh:F4}]) " +
                $"| {histogram.ChiSquare:F1} ({histogram.CriticalValue:F1}, p = {histogram.PValue:F2}) " +
                $"| {before.Horizontal:F4} / {before.Vertical:F4} / {before.Diagonal:F4} " +
                $"| {after.Horizontal:F4} / {after.Vertical:F4} / {after.Diagonal:F4} " +
                $"| {key.Ciphertexts.Npcr:F4} / {key.WrongKeyDecryption.Npcr:F4} |"));
        }

        output.WriteLine(table.ToString());
    }
}
