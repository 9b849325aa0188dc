using System.Buffers.Binary;

namespace TrustedProxy.Testing.Storage;

/// <summary>
/// Table-driven reflected CRC-32 as S3 checks <c>x-amz-checksum-crc32</c> (IEEE polynomial) and
/// <c>x-amz-checksum-crc32c</c> (Castagnoli). Written here because the System.IO.Hashing the mirror
/// serves (10.0.x) has CRC-32 but no CRC-32C, and one implementation of both is simpler than two.
/// </summary>
internal sealed class Crc32Table
{
    public static readonly Crc32Table Ieee = new(0xEDB88320u);
    public static readonly Crc32Table Castagnoli = new(0x82F63B78u);

    private readonly uint[] _table = new uint[256];

    private Crc32Table(uint reflectedPolynomial)
    {
        for (uint i = 0; i < 256; i++)
        {
            var crc = i;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ reflectedPolynomial : crc >> 1;
            }

            _table[i] = crc;
        }
    }

    public uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }

    /// <summary>The checksum as S3 writes it in a header: base64 of the big-endian value.</summary>
    public string ComputeBase64(ReadOnlySpan<byte> data)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, Compute(data));
        return Convert.ToBase64String(bytes);
    }
}
