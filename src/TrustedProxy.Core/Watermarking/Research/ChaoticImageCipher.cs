using System.Buffers.Binary;
using System.Security.Cryptography;

namespace TrustedProxy.Watermarking.Research;

/// <summary>
/// RESEARCH ONLY, NOT FOR PROTECTION. The chaos-based image cipher of the source papers, in
/// Fridrich's permutation–diffusion architecture (J. Fridrich, "Symmetric ciphers based on
/// two-dimensional chaotic maps", Int. J. Bifurcation and Chaos 8(6), 1998): each round permutes
/// the samples by sorting a logistic-map orbit, then diffuses them forward and backward with
/// c_i = (p_i + k_i + c_{i−1}) mod 2^bits, k drawn from the same orbit. Exact inverse, deterministic
/// for a key, frame index and context. Why the proxy never uses it for protection:
/// <c>docs/chaos-cipher.md</c>; the proxy's encryption is AES-256-GCM.
/// </summary>
/// <remarks>
/// The 256-bit key is never fed to the map directly: HKDF-SHA256 expands it into one (x0, r) pair
/// per frame and round, x0 ∈ [0.001, 0.999], r ∈ [3.99, 3.9999) (the chaotic end of the logistic
/// map's range, away from the periodic windows below 3.99 and from r = 4, where x = 0.5 maps to 1
/// and the orbit collapses to 0). The orbit is iterated in IEEE 754 double precision as
/// (r · x) · (1 − x), each operation rounded on its own to double (SSE2/AdvSIMD on x64 and ARM64;
/// RyuJIT neither reassociates nor widens it), so .NET on those platforms gives the same orbit. An
/// implementation that evaluates r·x − r·x² (perhaps fused), reassociates (fast-math) or keeps
/// x87 80-bit intermediates produces another orbit after a few dozen iterations, hence another
/// keystream, and cannot decrypt. That is a property of all floating-point chaotic ciphers.
/// </remarks>
internal sealed class ChaoticImageCipher : IDisposable
{
    /// <summary>The key is 256 bits.</summary>
    public const int KeySizeBytes = 32;

    /// <summary>Iterations discarded before the orbit is used, so that nearby keys have diverged.</summary>
    public const int BurnIn = 1000;

    public const int DefaultRounds = 2;

    /// <summary>r is drawn from [MinimumR, MinimumR + RSpan).</summary>
    public const double MinimumR = 3.99;

    public const double RSpan = 0.0099;

    /// <summary>x0 is drawn from [MinimumX0, MinimumX0 + X0Span).</summary>
    public const double MinimumX0 = 0.001;

    public const double X0Span = 0.998;

    /// <summary>
    /// A keystream sample is ⌊x · 10^14⌋ mod 2^bits, the usual quantisation of the papers: the low
    /// bits of the scaled orbit are close to uniform, where its leading bits follow the map's
    /// arcsine density. 10^14 &lt; 2^47 leaves enough bits for 32-bit samples.
    /// </summary>
    public const double KeystreamScale = 1e14;

    /// <summary>HKDF-Extract salt: names the construction and its version.</summary>
    public static ReadOnlySpan<byte> ExtractSalt => "TrustedProxy/research/chaos-cipher/v1"u8;

    /// <summary>HKDF-Expand info prefix for the (x0, r) pair; frame, round and context follow.</summary>
    public static ReadOnlySpan<byte> ParameterInfo => "TrustedProxy/research/chaos-cipher/logistic-x0-r"u8;

    private const double Unit53 = 1.0 / (1UL << 53);

    private readonly byte[] _prk = new byte[32];
    private bool _disposed;

    /// <param name="key">32 bytes.</param>
    /// <param name="rounds">Permutation–diffusion rounds, at least 1.</param>
    public ChaoticImageCipher(ReadOnlySpan<byte> key, int rounds = DefaultRounds)
    {
        if (key.Length != KeySizeBytes)
        {
            throw new ArgumentException($"the key must be {KeySizeBytes} bytes, not {key.Length}", nameof(key));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        Rounds = rounds;
        HKDF.Extract(HashAlgorithmName.SHA256, key, ExtractSalt, _prk);
    }

    public int Rounds { get; }

    /// <summary>
    /// Encrypts one frame. <paramref name="frame"/> and <paramref name="context"/> (e.g. an export
    /// identifier) select the keystream, so frames and exports under one key do not share it.
    /// </summary>
    public void Encrypt(ReadOnlySpan<int> plain, Span<int> cipher, ChaosFrameShape shape, int frame = 0, ReadOnlySpan<byte> context = default)
    {
        var work = Load(plain, cipher, shape, nameof(plain));
        var scratch = new uint[work.Length];
        var mask = shape.Mask;
        for (var round = 0; round < Rounds; round++)
        {
            var ks = Keystream(shape, frame, round, context);
            var permutation = ks.Permutation;
            for (var j = 0; j < scratch.Length; j++)
            {
                scratch[j] = work[permutation[j]];
            }

            // uint addition wraps mod 2^32, a multiple of 2^bits, so masking afterwards is mod 2^bits.
            var previous = ks.ForwardIv;
            for (var i = 0; i < scratch.Length; i++)
            {
                previous = (scratch[i] + ks.Forward[i] + previous) & mask;
                scratch[i] = previous;
            }

            // The backward pass carries a change in any position to every sample before it.
            previous = ks.BackwardIv;
            for (var i = scratch.Length - 1; i >= 0; i--)
            {
                previous = (scratch[i] + ks.Backward[i] + previous) & mask;
                scratch[i] = previous;
            }

            (work, scratch) = (scratch, work);
        }

        Store(work, cipher);
    }

    /// <summary>The exact inverse of the int[] <c>Encrypt</c> under the same key, frame and context.</summary>
    public void Decrypt(ReadOnlySpan<int> cipher, Span<int> plain, ChaosFrameShape shape, int frame = 0, ReadOnlySpan<byte> context = default)
    {
        var work = Load(cipher, plain, shape, nameof(cipher));
        var scratch = new uint[work.Length];
        var mask = shape.Mask;
        for (var round = Rounds - 1; round >= 0; round--)
        {
            var ks = Keystream(shape, frame, round, context);
            var next = ks.BackwardIv;
            for (var i = work.Length - 1; i >= 0; i--)
            {
                var c = work[i];
                work[i] = (c - ks.Backward[i] - next) & mask;
                next = c;
            }

            var previous = ks.ForwardIv;
            for (var i = 0; i < work.Length; i++)
            {
                var c = work[i];
                work[i] = (c - ks.Forward[i] - previous) & mask;
                previous = c;
            }

            var permutation = ks.Permutation;
            for (var j = 0; j < work.Length; j++)
            {
                scratch[permutation[j]] = work[j];
            }

            (work, scratch) = (scratch, work);
        }

        Store(work, plain);
    }

    /// <summary>16-bit convenience: the int[] encryption on ushort samples (at most 16 bits).</summary>
    public void Encrypt(ReadOnlySpan<ushort> plain, Span<ushort> cipher, ChaosFrameShape shape, int frame = 0, ReadOnlySpan<byte> context = default)
    {
        var contextCopy = context.ToArray();
        Through16(plain, cipher, shape, (p, c) => Encrypt(p, c, shape, frame, contextCopy));
    }

    public void Decrypt(ReadOnlySpan<ushort> cipher, Span<ushort> plain, ChaosFrameShape shape, int frame = 0, ReadOnlySpan<byte> context = default)
    {
        var contextCopy = context.ToArray();
        Through16(cipher, plain, shape, (c, p) => Decrypt(c, p, shape, frame, contextCopy));
    }

    /// <summary>
    /// Encrypts every frame of a native image into a copy of its Pixel Data. Only the stored bits of
    /// each sample change (as with <see cref="PixelImage.WriteFrame"/>); YBR_FULL_422 chroma is left
    /// as it is. Signed stored values are offset by 2^(bits−1) into [0, 2^bits) for the cipher.
    /// </summary>
    public byte[] EncryptPixelData(PixelImage image, ReadOnlySpan<byte> context = default) => TransformPixelData(image, context, encrypt: true);

    /// <summary>The inverse of <see cref="EncryptPixelData"/>: <paramref name="image"/> describes the encrypted Pixel Data.</summary>
    public byte[] DecryptPixelData(PixelImage image, ReadOnlySpan<byte> context = default) => TransformPixelData(image, context, encrypt: false);

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            CryptographicOperations.ZeroMemory(_prk);
        }
    }

    /// <summary>One step of the logistic map, each operation rounded separately (see the remarks).</summary>
    private static double Step(double x, double r) => (r * x) * (1.0 - x);

    private static uint Quantise(double x, uint mask) => (uint)(ulong)(x * KeystreamScale) & mask;

    private static uint[] Load(ReadOnlySpan<int> source, Span<int> destination, ChaosFrameShape shape, string name)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (source.Length != shape.SampleCount || destination.Length != shape.SampleCount)
        {
            throw new ArgumentException($"the frame holds {shape.SampleCount} samples; got {source.Length} in and room for {destination.Length}", name);
        }

        var mask = shape.Mask;
        var work = new uint[source.Length];
        for (var i = 0; i < work.Length; i++)
        {
            var value = (uint)source[i];
            if (value > mask)
            {
                // A value outside the stored range would be truncated by the modular diffusion: no exact inverse.
                throw new ArgumentException($"sample {i} is {source[i]}, outside [0, {mask}] for {shape.BitsStored} bits", name);
            }

            work[i] = value;
        }

        return work;
    }

    private static void Store(uint[] work, Span<int> destination)
    {
        for (var i = 0; i < work.Length; i++)
        {
            destination[i] = (int)work[i];
        }
    }

    private static void Through16(ReadOnlySpan<ushort> source, Span<ushort> destination, ChaosFrameShape shape, Action<int[], int[]> transform)
    {
        if (shape.BitsStored > 16)
        {
            throw new ArgumentException($"{shape.BitsStored}-bit samples do not fit ushort", nameof(shape));
        }

        if (destination.Length != source.Length)
        {
            throw new ArgumentException("source and destination differ in length", nameof(destination));
        }

        var input = new int[source.Length];
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = source[i];
        }

        var output = new int[input.Length];
        transform(input, output);
        for (var i = 0; i < output.Length; i++)
        {
            destination[i] = (ushort)output[i];
        }
    }

    private byte[] TransformPixelData(PixelImage image, ReadOnlySpan<byte> context, bool encrypt)
    {
        ArgumentNullException.ThrowIfNull(image);
        var shape = new ChaosFrameShape(image.Columns, image.Rows, image.Channels, image.BitsStored);
        var output = image.PixelData.ToArray();
        var buffer = image.CreateFrameBuffer();
        var samples = new int[shape.SampleCount];
        var result = new int[shape.SampleCount];
        var half = 1u << (image.BitsStored - 1);
        var extend = 32 - image.BitsStored;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);

            // FrameBuffer holds [−2^(B−1), 2^(B−1)−1]; flipping the top stored bit of the B-bit
            // two's complement gives the offset value in [0, 2^B), and back.
            for (var i = 0; i < samples.Length; i++)
            {
                samples[i] = (int)(((uint)buffer.Values[i] & shape.Mask) ^ half);
            }

            if (encrypt)
            {
                Encrypt(samples, result, shape, frame, context);
            }
            else
            {
                Decrypt(samples, result, shape, frame, context);
            }

            for (var i = 0; i < result.Length; i++)
            {
                buffer.Values[i] = (int)(((uint)result[i] ^ half) << extend) >> extend;
            }

            image.WriteFrame(frame, buffer, output);
        }

        return output;
    }

    private RoundKeystream Keystream(ChaosFrameShape shape, int frame, int round, ReadOnlySpan<byte> context)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (x, r) = Parameters(frame, round, context);
        for (var i = 0; i < BurnIn; i++)
        {
            x = Step(x, r);
        }

        var n = shape.SampleCount;
        var mask = shape.Mask;
        var order = new double[n];
        var permutation = new int[n];
        for (var i = 0; i < n; i++)
        {
            x = Step(x, r);
            order[i] = x;
            permutation[i] = i;
        }

        // Equal orbit values would mean the orbit has become periodic; the sort is then still
        // deterministic for one runtime, which is all the inverse needs.
        Array.Sort(order, permutation);

        var forward = new uint[n];
        var backward = new uint[n];
        x = Step(x, r);
        var forwardIv = Quantise(x, mask);
        for (var i = 0; i < n; i++)
        {
            x = Step(x, r);
            forward[i] = Quantise(x, mask);
        }

        x = Step(x, r);
        var backwardIv = Quantise(x, mask);
        for (var i = 0; i < n; i++)
        {
            x = Step(x, r);
            backward[i] = Quantise(x, mask);
        }

        return new RoundKeystream(permutation, forward, forwardIv, backward, backwardIv);
    }

    private (double X0, double R) Parameters(int frame, int round, ReadOnlySpan<byte> context)
    {
        var info = new byte[ParameterInfo.Length + 8 + context.Length];
        ParameterInfo.CopyTo(info);
        BinaryPrimitives.WriteInt32BigEndian(info.AsSpan(ParameterInfo.Length), frame);
        BinaryPrimitives.WriteInt32BigEndian(info.AsSpan(ParameterInfo.Length + 4), round);
        context.CopyTo(info.AsSpan(ParameterInfo.Length + 8));
        Span<byte> okm = stackalloc byte[16];
        try
        {
            HKDF.Expand(HashAlgorithmName.SHA256, _prk, okm, info);

            // 53 bits each: the full precision of a double in [0, 1).
            var u = BinaryPrimitives.ReadUInt64BigEndian(okm) >> 11;
            var v = BinaryPrimitives.ReadUInt64BigEndian(okm[8..]) >> 11;
            return (MinimumX0 + (X0Span * (u * Unit53)), MinimumR + (RSpan * (v * Unit53)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(okm);
            CryptographicOperations.ZeroMemory(info);
        }
    }

    private sealed record RoundKeystream(int[] Permutation, uint[] Forward, uint ForwardIv, uint[] Backward, uint BackwardIv);
}
