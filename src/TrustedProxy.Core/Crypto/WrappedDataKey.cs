using System.Buffers.Binary;

namespace TrustedProxy.Crypto;

/// <summary>
/// The layout of a wrapped data key as far as anyone but its key-encryption key needs it: which
/// key version wrapped it. The version sits in the clear in the header (and is authenticated as
/// associated data), so the index can say which rows a version still protects without any key.
/// </summary>
internal static class WrappedDataKey
{
    public const byte LegacyFormat = 1;
    public const byte Format = 2;
    public const int LegacyLength = 1 + 12 + DataKey.Bytes + 16;
    public const int HeaderLength = 1 + 4;
    public const int Length = HeaderLength + 12 + DataKey.Bytes + 16;

    /// <summary>The key version of a well-formed wrapped key; false for anything else.</summary>
    public static bool TryReadVersion(ReadOnlySpan<byte> wrapped, out int version)
    {
        version = 0;
        if (wrapped.Length == LegacyLength && wrapped[0] == LegacyFormat)
        {
            version = 1;
            return true;
        }

        if (wrapped.Length == Length && wrapped[0] == Format)
        {
            var value = BinaryPrimitives.ReadUInt32BigEndian(wrapped.Slice(1, 4));
            if (value is >= 1 and <= int.MaxValue)
            {
                version = (int)value;
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The version the index records for a row: the header's, or 1 for a blob of no known format
    /// (it unwraps under no version, so it must not hold any later version back from retirement
    /// either; the rotation reports such a row rather than re-wrapping it).
    /// </summary>
    public static int IndexedVersion(ReadOnlySpan<byte> wrapped) => TryReadVersion(wrapped, out var version) ? version : 1;
}
