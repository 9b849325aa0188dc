using System.Numerics;

namespace TrustedProxy.UploadCache;

/// <summary>How a record's ciphertext is laid out as cloud objects: <see cref="Count"/> objects of <see cref="Length"/> bytes each.</summary>
/// <param name="Length">Bytes of every object of the record (the last one is padded with random bytes).</param>
/// <param name="Count">Number of objects.</param>
public readonly record struct BlockLayout(long Length, int Count)
{
    /// <summary>Total bytes stored, padding included.</summary>
    public long StoredLength => Length * Count;
}

/// <summary>
/// A size-padding scheme: decides the objects a ciphertext of a given length becomes, so that the
/// sizes the cloud sees fall into few classes. Padding is random bytes, which look like ciphertext.
/// </summary>
public interface IPaddingScheme
{
    /// <summary>The configuration name.</summary>
    string Name { get; }

    /// <summary>The layout for <paramref name="ciphertextLength"/> bytes (at least one byte).</summary>
    BlockLayout Layout(long ciphertextLength);

    /// <summary>A plausible object length for a dummy, given a real one drawn at random (or null when none is known yet).</summary>
    long DummyLength(long? realBlockLength);
}

/// <summary>No padding: one object of the exact ciphertext length (for comparison only).</summary>
public sealed class NoPadding : IPaddingScheme
{
    public const string SchemeName = "none";

    public string Name => SchemeName;

    public BlockLayout Layout(long ciphertextLength) => new(ciphertextLength, 1);

    public long DummyLength(long? realBlockLength) => realBlockLength ?? 64 * 1024;
}

/// <summary>One object padded to the next power of two: at most 2x overhead, log2(max size) size classes.</summary>
public sealed class PowerOfTwoPadding : IPaddingScheme
{
    public const string SchemeName = "power-of-two";

    public string Name => SchemeName;

    public BlockLayout Layout(long ciphertextLength) => new((long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, ciphertextLength)), 1);

    public long DummyLength(long? realBlockLength) => realBlockLength ?? 64 * 1024;
}

/// <summary>
/// Padmé (Nikitin et al., PETS 2019): keep the top ⌊log2 E⌋+1 bits of the length, where E is its
/// bit length, and round the rest up. Overhead at most about 12%, O(log log) leaked bits.
/// </summary>
public sealed class PadmePadding : IPaddingScheme
{
    public const string SchemeName = "padme";

    public string Name => SchemeName;

    public BlockLayout Layout(long ciphertextLength) => new(Pad(ciphertextLength), 1);

    public long DummyLength(long? realBlockLength) => realBlockLength ?? Pad(64 * 1024);

    public static long Pad(long length)
    {
        if (length <= 2)
        {
            return Math.Max(1, length);
        }

        var e = 63 - BitOperations.LeadingZeroCount((ulong)length);
        var s = 64 - BitOperations.LeadingZeroCount((ulong)e);
        var lastBits = e - s;
        var mask = (1L << lastBits) - 1;
        return (length + mask) & ~mask;
    }
}

/// <summary>
/// Fixed-size blocks: the ciphertext is cut into blocks of one size, each its own object under its
/// own random name, released independently. Every object in the cloud then has the same size; what
/// is left is the number of blocks per record, which the schedule scatters in time.
/// </summary>
public sealed class FixedBlockPadding(int blockSize) : IPaddingScheme
{
    public const string SchemeName = "fixed-blocks";

    public string Name => SchemeName;

    public int BlockSize { get; } = blockSize;

    public BlockLayout Layout(long ciphertextLength) => new(BlockSize, checked((int)Math.Max(1, (ciphertextLength + BlockSize - 1) / BlockSize)));

    public long DummyLength(long? realBlockLength) => BlockSize;
}

/// <summary>The registered padding schemes, by name.</summary>
public static class PaddingSchemes
{
    public static IReadOnlyCollection<string> Names { get; } = [FixedBlockPadding.SchemeName, PadmePadding.SchemeName, PowerOfTwoPadding.SchemeName, NoPadding.SchemeName];

    public static IPaddingScheme Create(UploadCacheOptions options) => options.Padding switch
    {
        FixedBlockPadding.SchemeName => new FixedBlockPadding(options.BlockSizeBytes),
        PadmePadding.SchemeName => new PadmePadding(),
        PowerOfTwoPadding.SchemeName => new PowerOfTwoPadding(),
        NoPadding.SchemeName => new NoPadding(),
        _ => throw new ArgumentException($"unknown padding scheme '{options.Padding}'; choose one of: {string.Join(", ", Names)}"),
    };
}
