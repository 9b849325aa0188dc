using System.Security.Cryptography;

namespace TrustedProxy.UploadCache;

/// <summary>
/// A <see cref="Random"/> whose every draw comes from the CSPRNG: hold times and choices of the
/// schedule must not be predictable from earlier ones, or the cloud could undo the mixing.
/// Simulations pass a seeded <see cref="Random"/> instead.
/// </summary>
public sealed class CryptoRandom : Random
{
    public override int Next() => RandomNumberGenerator.GetInt32(int.MaxValue);

    public override int Next(int maxValue) => RandomNumberGenerator.GetInt32(maxValue);

    public override int Next(int minValue, int maxValue) => RandomNumberGenerator.GetInt32(minValue, maxValue);

    public override double NextDouble() => (RandomNumberGenerator.GetInt32(1 << 26) * (double)(1 << 27) + RandomNumberGenerator.GetInt32(1 << 27)) / (1L << 53);

    public override long NextInt64(long minValue, long maxValue)
    {
        var range = (ulong)(maxValue - minValue);
        var limit = ulong.MaxValue - ulong.MaxValue % range;
        Span<byte> bytes = stackalloc byte[8];
        ulong value;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            value = BitConverter.ToUInt64(bytes);
        }
        while (value >= limit);

        return minValue + (long)(value % range);
    }

    public override void NextBytes(Span<byte> buffer) => RandomNumberGenerator.Fill(buffer);

    public override void NextBytes(byte[] buffer) => RandomNumberGenerator.Fill(buffer);

    protected override double Sample() => NextDouble();
}
