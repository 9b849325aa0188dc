using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using TrustedProxy.IO;
using TrustedProxy.Storage;

namespace TrustedProxy.Crypto;

/// <summary>
/// The outermost layer of every object the proxy stores: the bytes are XORed with an AES-256-CTR
/// keystream under a key derived from a master-derived root and the object's own name, so what the
/// cloud holds is uniform at every offset whatever lies beneath (the envelope's header, padding,
/// ciphertext), and a dummy is the keystream itself. See docs/encryption-format.md.
/// </summary>
/// <remarks>
/// Object key = HKDF-Expand-SHA256(root, "TrustedProxy/object-mask/v1" ‖ name, 32); counter block i
/// = 0 (8 bytes) ‖ i (uint64 BE). One key per name and names are never reused, so a (key, counter)
/// pair never masks two different contents. The mask is seekable: a byte at a position is always the
/// same byte, which is what an SDK needs to hash a body, rewind and send it, or to retry. It adds no
/// integrity (the envelope's AES-GCM inside provides it) and no secrecy beyond what the envelope
/// already gives real blocks; its job is that nothing on the wire, at any offset, tells one kind of
/// object from another.
/// </remarks>
internal sealed class ObjectMask : IDisposable
{
    internal const string RootInfo = "TrustedProxy/object-mask/v1";
    private const int AesBlock = 16;
    private static readonly byte[] InfoPrefix = "TrustedProxy/object-mask/v1"u8.ToArray();

    private readonly byte[] _root;

    public ObjectMask(byte[] root)
    {
        if (root.Length != 32)
        {
            throw new CryptographicException("the object-mask root key is 32 bytes");
        }

        _root = root;
    }

    public static ObjectMask From(ProxyKeyRing keys) => new(keys.Derive(RootInfo));

    /// <summary>The stored form of <paramref name="content"/> (seekable, of known length) under <paramref name="name"/>.</summary>
    public Stream Mask(ObjectName name, Stream content) => new MaskedStream(CreateCipher(name), content);

    /// <summary>A dummy object: the name's keystream itself, the same bytes on every read of every position.</summary>
    public Stream Dummy(ObjectName name, long length) => new MaskedStream(CreateCipher(name), new ZeroStream(length));

    /// <summary>Removes (or applies: XOR is its own inverse) the mask of the bytes at <paramref name="position"/> of the object, in place.</summary>
    public void Apply(ObjectName name, Span<byte> data, long position = 0)
    {
        using var aes = CreateCipher(name);
        Xor(aes, data, position);
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_root);

    private Aes CreateCipher(ObjectName name)
    {
        Span<byte> info = stackalloc byte[InfoPrefix.Length + ObjectName.Bytes];
        InfoPrefix.CopyTo(info);
        name.ToBytes().CopyTo(info[InfoPrefix.Length..]);
        Span<byte> key = stackalloc byte[32];
        HKDF.Expand(HashAlgorithmName.SHA256, _root, key, info);
        var aes = Aes.Create();
        aes.Key = key.ToArray();
        CryptographicOperations.ZeroMemory(key);
        return aes;
    }

    /// <summary>XORs the keystream for [position, position + data.Length) into <paramref name="data"/>.</summary>
    internal static void Xor(Aes aes, Span<byte> data, long position)
    {
        if (data.IsEmpty)
        {
            return;
        }

        var first = position / AesBlock;
        var skip = (int)(position % AesBlock);
        var blocks = (skip + data.Length + AesBlock - 1) / AesBlock;
        var counters = ArrayPool<byte>.Shared.Rent(blocks * AesBlock);
        var stream = ArrayPool<byte>.Shared.Rent(blocks * AesBlock);
        try
        {
            var span = counters.AsSpan(0, blocks * AesBlock);
            span.Clear();
            for (var i = 0; i < blocks; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(span.Slice(i * AesBlock + 8, 8), (ulong)(first + i));
            }

            aes.EncryptEcb(span, stream.AsSpan(0, blocks * AesBlock), PaddingMode.None);
            var keystream = stream.AsSpan(skip, data.Length);
            for (var i = 0; i < data.Length; i++)
            {
                data[i] ^= keystream[i];
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(stream.AsSpan(0, blocks * AesBlock));
            ArrayPool<byte>.Shared.Return(counters);
            ArrayPool<byte>.Shared.Return(stream);
        }
    }

    /// <summary>A seekable masked view of a seekable stream: reading position p always yields the same byte.</summary>
    private sealed class MaskedStream(Aes aes, Stream inner) : ReadOnlyLengthStream(inner.Length)
    {
        protected override int ReadAt(long position, Span<byte> buffer)
        {
            inner.Position = position;
            var read = inner.Read(buffer);
            Xor(aes, buffer[..read], position);
            return read;
        }

        protected override async ValueTask<int> ReadAtAsync(long position, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            inner.Position = position;
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Xor(aes, buffer.Span[..read], position);
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                aes.Dispose();
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class ZeroStream(long length) : ReadOnlyLengthStream(length)
    {
        protected override int ReadAt(long position, Span<byte> buffer)
        {
            buffer.Clear();
            return buffer.Length;
        }
    }
}
