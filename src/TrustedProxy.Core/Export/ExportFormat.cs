using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Export;

/// <summary>
/// The constants and the small derivations of the export bundle format, version 1 (docs/export.md):
/// one place for every label, size and layout rule the writer and the reader share.
/// </summary>
internal static class ExportFormat
{
    public const byte Version = 1;

    public const int MinSegmentSize = 4 * 1024;

    public const int MaxSegmentSize = 4 * 1024 * 1024;

    public const int BundleIdLength = 16;

    public const int KeyIdLength = 32;

    /// <summary>An uncompressed P-256 point: 0x04 ‖ X (32) ‖ Y (32).</summary>
    public const int EphemeralKeyLength = 65;

    public const int ContentKeyLength = 32;

    public const int TagLength = 16;

    /// <summary>The content key sealed under the wrapping key: ciphertext (32) ‖ tag (16).</summary>
    public const int WrappedKeyLength = ContentKeyLength + TagLength;

    /// <summary>A record's handle and view name are each at most this many ASCII bytes (one length byte).</summary>
    public const int MaxLabelLength = 255;

    /// <summary>Longest signature accepted (an ECDSA signature in IEEE P1363 form is 64 bytes on P-256, 96 on P-384).</summary>
    public const int MaxSignatureLength = 512;

    /// <summary>The segment frame's high bit: this is the record's last segment.</summary>
    public const uint FinalFlag = 0x8000_0000;

    public static ReadOnlySpan<byte> Magic => "TPXE"u8;

    /// <summary>Prefixed to the transcript before it is hashed for the signature, so that no signature made by the key for another purpose (TLS) can pass for a bundle's.</summary>
    public static ReadOnlySpan<byte> SignatureLabel => "TrustedProxy/export-bundle/v1\0"u8;

    public static ReadOnlySpan<byte> WrapLabel => "TrustedProxy/export-wrap/v1\0"u8;

    /// <summary>The recipient's key identifier: SHA-256 of its SubjectPublicKeyInfo (DER).</summary>
    public static byte[] KeyId(ECDiffieHellman key) => SHA256.HashData(key.ExportSubjectPublicKeyInfo());

    /// <summary>The key that wraps one record's content key: HKDF-SHA256 over the ECDH secret, salted with both public keys, bound to the bundle and the record's position.</summary>
    public static byte[] WrappingKey(byte[] sharedSecret, ReadOnlySpan<byte> ephemeralPublic, ReadOnlySpan<byte> recipientKeyId, ReadOnlySpan<byte> bundleId, int recordIndex)
    {
        var salt = new byte[EphemeralKeyLength + KeyIdLength];
        ephemeralPublic.CopyTo(salt);
        recipientKeyId.CopyTo(salt.AsSpan(EphemeralKeyLength));
        var info = new byte[WrapLabel.Length + BundleIdLength + 4];
        WrapLabel.CopyTo(info);
        bundleId.CopyTo(info.AsSpan(WrapLabel.Length));
        BinaryPrimitives.WriteInt32BigEndian(info.AsSpan(WrapLabel.Length + BundleIdLength), recordIndex);
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, sharedSecret, 32, salt, info);
    }

    /// <summary>The associated data of a wrapped key: the record's handle and view, each with its length.</summary>
    public static byte[] WrapAssociatedData(string handle, string view)
    {
        var h = Encoding.ASCII.GetBytes(handle);
        var v = Encoding.ASCII.GetBytes(view);
        var aad = new byte[2 + h.Length + v.Length];
        aad[0] = (byte)h.Length;
        h.CopyTo(aad, 1);
        aad[1 + h.Length] = (byte)v.Length;
        v.CopyTo(aad, 2 + h.Length);
        return aad;
    }

    /// <summary>
    /// A segment's nonce: 7 zero bytes ‖ segment number (4) ‖ final flag (1). The content key is
    /// fresh for every record of every export, so a counter is unique per key without a random part.
    /// </summary>
    public static void SegmentNonce(Span<byte> nonce, uint segment, bool final)
    {
        nonce.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(nonce[7..], segment);
        nonce[11] = final ? (byte)1 : (byte)0;
    }

    /// <summary>A segment's associated data: bundle id (16) ‖ record index (4) ‖ segment number (4) ‖ final flag (1).</summary>
    public static void SegmentAssociatedData(Span<byte> aad, ReadOnlySpan<byte> bundleId, int recordIndex, uint segment, bool final)
    {
        bundleId.CopyTo(aad);
        BinaryPrimitives.WriteInt32BigEndian(aad[16..], recordIndex);
        BinaryPrimitives.WriteUInt32BigEndian(aad[20..], segment);
        aad[24] = final ? (byte)1 : (byte)0;
    }

    public const int SegmentAssociatedDataLength = 25;

    /// <summary>Whether a handle or view name can be carried: 1 to 255 printable ASCII characters.</summary>
    public static bool IsLabel(string value) =>
        value.Length is > 0 and <= MaxLabelLength && value.All(c => c is >= '!' and <= '~');

    /// <summary>The public point of a P-256 key, uncompressed.</summary>
    public static byte[] EncodePoint(ECDiffieHellman key)
    {
        var q = key.ExportParameters(includePrivateParameters: false).Q;
        var point = new byte[EphemeralKeyLength];
        point[0] = 0x04;
        q.X!.CopyTo(point, 1);
        q.Y!.CopyTo(point, 33);
        return point;
    }
}

/// <summary>A bundle that must not be opened: malformed, beyond a limit, altered, for another recipient, or not signed by the federation's proxy. The message is one line for the user.</summary>
public sealed class ExportBundleException(string message) : Exception(message);
