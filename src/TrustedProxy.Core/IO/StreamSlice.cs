namespace TrustedProxy.IO;

/// <summary>
/// Base of the proxy's read-only seekable streams of known length: the position, seeking and
/// everything a stream must say it cannot do, said once. Subclasses fill a span at the position.
/// </summary>
internal abstract class ReadOnlyLengthStream(long length) : Stream
{
    private long _position;

    public sealed override bool CanRead => true;

    public sealed override bool CanSeek => true;

    public sealed override bool CanWrite => false;

    public sealed override long Length => length;

    public sealed override long Position
    {
        get => _position;
        set => _position = Math.Clamp(value, 0, length);
    }

    public sealed override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public sealed override int Read(Span<byte> buffer)
    {
        var wanted = (int)Math.Min(buffer.Length, length - _position);
        if (wanted <= 0)
        {
            return 0;
        }

        var read = ReadAt(_position, buffer[..wanted]);
        _position += read;
        return read;
    }

    public sealed override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var wanted = (int)Math.Min(buffer.Length, length - _position);
        if (wanted <= 0)
        {
            return 0;
        }

        var read = await ReadAtAsync(_position, buffer[..wanted], cancellationToken).ConfigureAwait(false);
        _position += read;
        return read;
    }

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => length + offset,
    };

    public sealed override void Flush()
    {
    }

    public sealed override void SetLength(long value) => throw new NotSupportedException();

    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Reads up to <paramref name="buffer"/>'s length (never past the end) at <paramref name="position"/>.</summary>
    protected abstract int ReadAt(long position, Span<byte> buffer);

    protected virtual ValueTask<int> ReadAtAsync(long position, Memory<byte> buffer, CancellationToken cancellationToken) =>
        ValueTask.FromResult(ReadAt(position, buffer.Span));
}

/// <summary>A read-only window [offset, offset + length) of a seekable stream (a block of a record's cache file).</summary>
internal sealed class StreamSlice : ReadOnlyLengthStream
{
    private readonly Stream _inner;
    private readonly long _offset;

    public StreamSlice(Stream inner, long offset, long length)
        : base(length)
    {
        if (offset < 0 || length < 0 || offset + length > inner.Length)
        {
            throw new IOException($"the slice [{offset}, {offset + length}) lies outside the {inner.Length}-byte file");
        }

        _inner = inner;
        _offset = offset;
    }

    protected override int ReadAt(long position, Span<byte> buffer)
    {
        _inner.Position = _offset + position;
        return _inner.Read(buffer);
    }

    protected override ValueTask<int> ReadAtAsync(long position, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _inner.Position = _offset + position;
        return _inner.ReadAsync(buffer, cancellationToken);
    }
}

/// <summary>Bytes from the CSPRNG, as many as asked: padding and dummy objects, indistinguishable from ciphertext.</summary>
internal sealed class RandomBytesStream(long length) : ReadOnlyLengthStream(length)
{
    protected override int ReadAt(long position, Span<byte> buffer)
    {
        System.Security.Cryptography.RandomNumberGenerator.Fill(buffer);
        return buffer.Length;
    }
}
