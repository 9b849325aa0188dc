using System.Buffers.Binary;
using System.Security.Cryptography;

namespace TrustedProxy.Backup;

/// <summary>
/// Seals one backup object: nonce (12, random) ‖ AES-256-GCM(u32 payload length ‖ payload ‖ zero
/// padding) ‖ tag (16), exactly <c>blockSize</c> bytes whatever the payload, with associated data
/// binding the object to its place (generation, sequence), so a swapped, replayed or moved object
/// fails to open. The bytes on the wire are uniform; no header says what they are.
/// </summary>
internal sealed class BackupObjectSealer(BackupKeys keys, int blockSize)
{
    public const int NonceBytes = 12;
    public const int TagBytes = 16;
    private const int LengthBytes = 4;
    private static readonly byte[] AssociatedPrefix = "TrustedProxy/backup/v1"u8.ToArray();

    public int BlockSize { get; } = blockSize >= 1024 ? blockSize : throw new ArgumentOutOfRangeException(nameof(blockSize), "a backup object is at least 1 KiB");

    /// <summary>How many payload bytes one object carries.</summary>
    public int PayloadCapacity => BlockSize - NonceBytes - TagBytes - LengthBytes;

    public byte[] Seal(long generation, ulong sequence, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > PayloadCapacity)
        {
            throw new ArgumentException($"a backup object carries at most {PayloadCapacity} bytes", nameof(payload));
        }

        var sealedObject = new byte[BlockSize];
        var plaintext = new byte[BlockSize - NonceBytes - TagBytes];
        try
        {
            BinaryPrimitives.WriteUInt32BigEndian(plaintext, (uint)payload.Length);
            payload.CopyTo(plaintext.AsSpan(LengthBytes));
            var nonce = sealedObject.AsSpan(0, NonceBytes);
            RandomNumberGenerator.Fill(nonce);
            using var gcm = new AesGcm(keys.SealingKey, TagBytes);
            gcm.Encrypt(nonce, plaintext, sealedObject.AsSpan(NonceBytes, plaintext.Length), sealedObject.AsSpan(BlockSize - TagBytes), Associated(generation, sequence));
            return sealedObject;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>Opens an object read from the backend; throws <see cref="BackupIntegrityException"/> unless it is the one sealed at this place.</summary>
    public byte[] Open(long generation, ulong sequence, ReadOnlySpan<byte> sealedObject)
    {
        if (sealedObject.Length != BlockSize)
        {
            throw new BackupIntegrityException($"backup object {generation}/{Describe(sequence)} is {sealedObject.Length} bytes, not {BlockSize}");
        }

        var plaintext = new byte[BlockSize - NonceBytes - TagBytes];
        try
        {
            using var gcm = new AesGcm(keys.SealingKey, TagBytes);
            gcm.Decrypt(sealedObject[..NonceBytes], sealedObject.Slice(NonceBytes, plaintext.Length), sealedObject[^TagBytes..], plaintext, Associated(generation, sequence));
            var length = BinaryPrimitives.ReadUInt32BigEndian(plaintext);
            if (length > PayloadCapacity)
            {
                throw new BackupIntegrityException($"backup object {generation}/{Describe(sequence)} declares {length} bytes, more than it can hold");
            }

            return plaintext.AsSpan(LengthBytes, (int)length).ToArray();
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BackupIntegrityException($"backup object {generation}/{Describe(sequence)} fails its authentication: altered, moved or of another key");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    internal static string Describe(ulong sequence) => BackupKeys.Describe(sequence);

    private static byte[] Associated(long generation, ulong sequence)
    {
        var data = new byte[AssociatedPrefix.Length + 16];
        AssociatedPrefix.CopyTo(data, 0);
        BinaryPrimitives.WriteInt64BigEndian(data.AsSpan(AssociatedPrefix.Length), generation);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(AssociatedPrefix.Length + 8), sequence);
        return data;
    }
}
