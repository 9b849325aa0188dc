using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Benchmarks;

/// <summary>
/// Reversible watermarking (issue #6) on generated 16-bit CT-like images, one thread, one frame:
/// the seal at ingest (HMAC over the pixels + embedding), the check at retrieval (extraction,
/// restoration + HMAC), the fingerprint at egress, and the embedding and extraction alone.
/// Throughput = <see cref="Size"/>² pixels / mean time.
/// </summary>
[MemoryDiagnoser]
public class WatermarkBenchmarks
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    private DicomWatermarker _watermarker = null!;
    private DicomFile _file = null!;
    private DicomElement _original = null!;
    private DicomElement _sealed = null!;
    private FrameBuffer _originalFrame = null!;
    private FrameBuffer _markedFrame = null!;
    private FrameBuffer _work = null!;
    private WatermarkKeystream _keystream = null!;
    private byte[] _message = [];

    [Params(512, 2048)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _watermarker = new DicomWatermarker(Key);
        _file = CtLike(Size);
        _original = _file.Dataset.Find(DicomTag.PixelData)!;
        var fields = new SealFields("dhabxnd5er4ct6uxl3iojri7oq", "St Olav", DateTimeOffset.FromUnixTimeSeconds(1_790_000_000));
        if (!_watermarker.Seal(_file, fields).Embedded)
        {
            throw new InvalidOperationException("the benchmark image was refused");
        }

        _sealed = _file.Dataset.Find(DicomTag.PixelData)!;
        _file.Dataset.Set(_original);

        // The core alone: the same seal message, no DICOM and no HMAC over the pixels.
        var image = PixelImage.FromDicom(_file);
        _originalFrame = image.CreateFrameBuffer();
        image.ReadFrame(0, _originalFrame);
        _markedFrame = image.CreateFrameBuffer();
        image.WithPixelData(_sealed.Value).ReadFrame(0, _markedFrame);
        _work = image.CreateFrameBuffer();
        using var keys = new WatermarkKeys(Key);
        _keystream = new WatermarkKeystream([.. keys.EmbeddingKey]);
        _message = new byte[63];
    }

    [GlobalCleanup]
    public void Cleanup() => _watermarker.Dispose();

    [Benchmark(Baseline = true, Description = "seal (ingest): HMAC + embed, DICOM in and out")]
    public bool Seal()
    {
        _file.Dataset.Set(_original);
        return _watermarker.Seal(_file, new SealFields("dhabxnd5er4ct6uxl3iojri7oq", "St Olav", DateTimeOffset.FromUnixTimeSeconds(1_790_000_000))).Embedded;
    }

    [Benchmark(Description = "verify + restore (retrieval): extract, restore, HMAC")]
    public bool VerifyAndRestore()
    {
        _file.Dataset.Set(_sealed);
        return _watermarker.VerifyAndRestore(_file).IsVerified;
    }

    [Benchmark(Description = "fingerprint (egress): embed, DICOM in and out")]
    public bool Fingerprint()
    {
        _file.Dataset.Set(_original);
        return _watermarker.Fingerprint(_file, new FingerprintFields("st-olav", "0HN7Q2K3:00000001", DateTimeOffset.FromUnixTimeSeconds(1_790_000_000))).Embedded;
    }

    [Benchmark(Description = "core embed, one frame buffer")]
    public int CoreEmbed()
    {
        _originalFrame.Values.AsSpan().CopyTo(_work.Values);
        return PredictionErrorExpansion.Embed(_work, _message, 0, _keystream, 45).EmbeddedBits;
    }

    [Benchmark(Description = "core extract + restore, one frame buffer")]
    public bool CoreExtract()
    {
        _markedFrame.Values.AsSpan().CopyTo(_work.Values);
        return PredictionErrorExpansion.TryExtract(_work, _keystream, out _);
    }

    /// <summary>
    /// A CT slice in Hounsfield units stored as signed 16-bit: air (−1000) around an elliptic body of
    /// soft tissue (40 HU) with fat, a bone ring (+1000), quantum noise of σ = 12 HU.
    /// </summary>
    internal static DicomFile CtLike(int size, int seed = 7)
    {
        var random = new Random(seed);
        var pixels = new byte[size * size * 2];
        for (var y = 0; y < size; y++)
        {
            for (var x = 0; x < size; x++)
            {
                double u = (x - size / 2.0) / (size * 0.42), v = (y - size / 2.0) / (size * 0.32);
                var r = Math.Sqrt(u * u + v * v);
                double hu = r > 1 ? -1000 : r > 0.93 ? -90 : r > 0.55 && r < 0.6 ? 1000 : 40 + 15 * Math.Sin(u * 9) * Math.Cos(v * 7);
                var noise = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()) * (r > 1 ? 3 : 12);
                BinaryPrimitives.WriteInt16LittleEndian(pixels.AsSpan((y * size + x) * 2), (short)Math.Round(hu + noise));
            }
        }

        var encoding = DicomEncoding.ExplicitLittle;
        var meta = new DicomDataset(encoding);
        meta.Set(DicomElement.Text(DicomTag.TransferSyntaxUid, DicomVR.UI, TransferSyntax.ExplicitVRLittleEndianUid));
        var d = new DicomDataset(encoding);
        d.Set(DicomElement.Text(DicomTag.SopClassUid, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2"));
        d.Set(DicomElement.Text(DicomTag.SopInstanceUid, DicomVR.UI, "2.25.1234567890"));
        d.Set(DicomElement.Text(DicomTag.PatientId, DicomVR.LO, "BENCH"));
        d.Set(DicomElement.UInt16(DicomTag.SamplesPerPixel, 1, encoding));
        d.Set(DicomElement.Text(DicomTag.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2"));
        d.Set(DicomElement.UInt16(DicomTag.Rows, (ushort)size, encoding));
        d.Set(DicomElement.UInt16(DicomTag.Columns, (ushort)size, encoding));
        d.Set(DicomElement.UInt16(DicomTag.BitsAllocated, 16, encoding));
        d.Set(DicomElement.UInt16(DicomTag.BitsStored, 16, encoding));
        d.Set(DicomElement.UInt16(PixelImage.HighBitTag, 15, encoding));
        d.Set(DicomElement.UInt16(DicomTag.PixelRepresentation, 1, encoding));
        d.Set(DicomElement.Create(DicomTag.PixelData, DicomVR.OW, pixels));
        return new DicomFile(new byte[128], meta, d, TransferSyntax.ExplicitVRLittleEndian);
    }
}
