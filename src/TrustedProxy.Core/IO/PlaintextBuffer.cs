using System.Buffers;
using System.Security.Cryptography;

namespace TrustedProxy.IO;

/// <summary>
/// A record's plaintext held whole, in an array rented from the shared pool, with one owner at a
/// time: disposing wipes the bytes used and returns the array. A retrieval of thousands of
/// instances rents and returns the same few arrays instead of allocating several large objects per
/// instance, each of which the runtime zeroes and, through the large-object heap, pays for with
/// full collections.
/// </summary>
internal sealed class PlaintextBuffer : IDisposable
{
    private byte[]? _array;

    public PlaintextBuffer(int length)
    {
        _array = ArrayPool<byte>.Shared.Rent(length);
        Length = length;
    }

    public int Length { get; }

    /// <summary>The rented array; only its first <see cref="Length"/> bytes are the plaintext.</summary>
    public byte[] Array => _array ?? throw new ObjectDisposedException(nameof(PlaintextBuffer));

    public Memory<byte> Memory => Array.AsMemory(0, Length);

    public Span<byte> Span => Array.AsSpan(0, Length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _array, null) is { } array)
        {
            CryptographicOperations.ZeroMemory(array.AsSpan(0, Length));
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
