using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Benchmarks;

/// <summary>
/// The segmented envelope against the platform's raw AES-256-GCM on the same bytes and segment
/// size, single-threaded. Throughput = <see cref="Bytes"/> / mean time.
/// </summary>
[MemoryDiagnoser]
public class EnvelopeBenchmarks
{
    public const int Bytes = 64 * 1024 * 1024;

    private readonly byte[] _plaintext = RandomNumberGenerator.GetBytes(Bytes);
    private readonly byte[] _sealedBuffer = new byte[SegmentedEnvelope.CiphertextLength(Bytes, SegmentedEnvelope.MaxSegmentSize)];
    private readonly DataKey _key = DataKey.CreateRandom();
    private readonly ObjectName _name = ObjectName.NewRandom();
    private byte[] _sealed = [];
    private AesGcm _raw = null!;

    [Params(16 * 1024, 64 * 1024, 256 * 1024)]
    public int SegmentSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _raw = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);
        using var output = new MemoryStream();
        using (var envelope = new EnvelopeEncryptingStream(output, _key, _name.ToBytes(), SegmentSize, leaveOpen: true))
        {
            envelope.Write(_plaintext);
            envelope.Complete();
        }

        _sealed = output.ToArray();
    }

    [Benchmark(Baseline = true, Description = "raw AES-256-GCM, same segments")]
    public void RawAesGcm()
    {
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> tag = stackalloc byte[16];
        for (var offset = 0; offset < Bytes; offset += SegmentSize)
        {
            var length = Math.Min(SegmentSize, Bytes - offset);
            nonce[0]++;
            _raw.Encrypt(nonce, _plaintext.AsSpan(offset, length), _sealedBuffer.AsSpan(offset, length), tag);
        }
    }

    [Benchmark(Description = "envelope encrypt (stream)")]
    public void Encrypt()
    {
        using var envelope = new EnvelopeEncryptingStream(Stream.Null, _key, _name.ToBytes(), SegmentSize, leaveOpen: true);
        envelope.Write(_plaintext);
        envelope.Complete();
    }

    [Benchmark(Description = "envelope decrypt+verify (stream)")]
    public void Decrypt()
    {
        using var input = new MemoryStream(_sealed, writable: false);
        using var envelope = new EnvelopeDecryptingStream(input, _key, _name.ToBytes(), Bytes);
        envelope.CopyTo(Stream.Null, 1 << 20);
    }
}
