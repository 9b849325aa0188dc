using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>Keys, payloads and helpers the watermarking tests share.</summary>
internal static class WatermarkTesting
{
    public static readonly byte[] Key = SHA256.HashData(Encoding.ASCII.GetBytes("TrustedProxy watermark tests: proxy key"));

    public static readonly byte[] OtherKey = SHA256.HashData(Encoding.ASCII.GetBytes("TrustedProxy watermark tests: another proxy"));

    /// <summary>The payload size the acceptance criterion is stated for.</summary>
    public static readonly byte[] Message512 = Deterministic(64, 512);

    public static DicomWatermarker Watermarker(byte[]? key = null, double minimumPsnr = 45) => new(key ?? Key, new WatermarkOptions(minimumPsnr));

    public static WatermarkKeystream Keystream(byte[]? key = null)
    {
        using var keys = new WatermarkKeys(key ?? Key);
        return new WatermarkKeystream([.. keys.EmbeddingKey]);
    }

    public static byte[] Deterministic(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static byte[] PixelData(DicomFile file) => file.Dataset.Find(DicomTag.PixelData)!.Value.ToArray();

    public static async Task<DicomFile> CopyAsync(DicomFile file) => await DicomFile.ReadAsync(new MemoryStream(await file.ToBytesAsync()));

    /// <summary>Every corpus file (test_files and charset_files) with native Pixel Data at the top level, by corpus name.</summary>
    public static IReadOnlyList<(string Name, DicomFile File)> NativeCorpusImages => NativeImages.Value;

    private static readonly Lazy<IReadOnlyList<(string, DicomFile)>> NativeImages = new(() =>
    {
        var list = new List<(string, DicomFile)>();
        foreach (var entry in DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && !f.IsCompressed && !DicomCorpus.KnownBroken.Contains(f.Name)))
        {
            var file = DicomFile.ReadAsync(entry.Path).GetAwaiter().GetResult();
            if (file.Dataset.Find(DicomTag.PixelData) is { Fragments: null })
            {
                list.Add((entry.ToString(), file));
            }
        }

        return list;
    });

    /// <summary>Embeds <paramref name="message"/> in every frame through the core API; returns the marked Pixel Data and the reports, or the refusal.</summary>
    public static (byte[]? Marked, IReadOnlyList<FrameEmbedReport> Reports, WatermarkRefusal? Refusal) EmbedEveryFrame(PixelImage image, byte[] message, WatermarkKeystream keystream, double minimumPsnr = 45)
    {
        var output = image.PixelData.ToArray();
        var buffer = image.CreateFrameBuffer();
        var reports = new List<FrameEmbedReport>();
        try
        {
            for (var frame = 0; frame < image.Frames; frame++)
            {
                image.ReadFrame(frame, buffer);
                reports.Add(PredictionErrorExpansion.Embed(buffer, message, frame, keystream, minimumPsnr));
                image.WriteFrame(frame, buffer, output);
            }
        }
        catch (WatermarkRefusedException e)
        {
            return (null, reports, e.Refusal);
        }

        return (output, reports, null);
    }
}
