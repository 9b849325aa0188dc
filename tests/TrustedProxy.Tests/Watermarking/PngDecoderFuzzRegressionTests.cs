using TrustedProxy.Testing;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>
/// Inputs the fuzz campaign (docs/fuzzing.md, target png) found escaping the PNG decoder as
/// something other than a <see cref="FormatException"/>. Kept as bytes in FuzzRegressions/; each
/// must be refused by the decoder and reported by leak tracing as no valid mark.
/// </summary>
public sealed class PngDecoderFuzzRegressionTests
{
    public static TheoryData<string> Inputs => new(Directory.EnumerateFiles(Repository.Path("tests", "TrustedProxy.Tests", "Watermarking", "FuzzRegressions")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Inputs))]
    public void FuzzFinding_IsRefusedAsMalformedPng(string name)
    {
        var png = File.ReadAllBytes(Repository.Path("tests", "TrustedProxy.Tests", "Watermarking", "FuzzRegressions", name));

        Assert.Throws<FormatException>(() => PngDecoder.Decode(png));
        using var watermarker = new DicomWatermarker(WatermarkTesting.Key);
        Assert.Equal(TraceStatus.NoValidMark, watermarker.TracePng(png).Status);
    }

    [Fact]
    public void ZlibHeaderAskingForAPresetDictionary_IsRefusedAsMalformedPng()
    {
        // zlib-preset-dictionary.png: its IDAT starts 78 20, FDICT set (PNG forbids it); zlib answers
        // Z_NEED_DICT, which .NET raises as an IOException rather than an InvalidDataException.
        var png = File.ReadAllBytes(Repository.Path("tests", "TrustedProxy.Tests", "Watermarking", "FuzzRegressions", "zlib-preset-dictionary.png"));

        var refused = Assert.Throws<FormatException>(() => PngDecoder.Decode(png));

        Assert.Contains("not valid zlib", refused.Message, StringComparison.Ordinal);
    }
}
