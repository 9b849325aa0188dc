using System.Buffers;
using System.Security.Cryptography;

namespace TrustedProxy.Crypto;

/// <summary>
/// A write-only stream that encrypts everything written to it into the segmented envelope format.
/// A full segment is held back until more data arrives, so the last segment can be marked final
/// without knowing the length in advance. <see cref="CompleteAsync"/> must be called to seal it.
/// </summary>
internal sealed class EnvelopeEncryptingStream : Stream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly AesGcm _cipher;
    private readonly byte[] _header;
    private readonly byte[] _objectIndex;
    private readonly int _segmentSize;
    private readonly byte[] _plain;
    private readonly byte[] _sealed;
    private int _filled;
    private uint _segment;
    private bool _headerWritten;
    private bool _completed;
    private long _plaintextLength;

    public EnvelopeEncryptingStream(Stream inner, DataKey dataKey, ReadOnlySpan<byte> objectIndex, int segmentSize = SegmentedEnvelope.DefaultSegmentSize, bool leaveOpen = false)
    {
        _inner = inner;
        _leaveOpen = leaveOpen;
        _segmentSize = segmentSize;
        _header = SegmentedEnvelope.CreateHeader(segmentSize);
        _objectIndex = objectIndex.ToArray();
        _cipher = SegmentedEnvelope.CreateCipher(dataKey, _header, _objectIndex);
        _plain = ArrayPool<byte>.Shared.Rent(segmentSize);
        _sealed = ArrayPool<byte>.Shared.Rent(segmentSize + SegmentedEnvelope.TagLength);
    }

    public long PlaintextLength => _plaintextLength;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_completed;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ThrowIfCompleted();
        while (!buffer.IsEmpty)
        {
            if (_filled == _segmentSize)
            {
                var length = Seal(final: false);
                WriteHeaderOnce();
                _inner.Write(_sealed, 0, length);
            }

            var take = Math.Min(buffer.Length, _segmentSize - _filled);
            buffer[..take].CopyTo(_plain.AsSpan(_filled));
            _filled += take;
            _plaintextLength += take;
            buffer = buffer[take..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        while (!buffer.IsEmpty)
        {
            if (_filled == _segmentSize)
            {
                var length = Seal(final: false);
                await WriteHeaderOnceAsync(cancellationToken).ConfigureAwait(false);
                await _inner.WriteAsync(_sealed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }

            var take = Math.Min(buffer.Length, _segmentSize - _filled);
            buffer.Span[..take].CopyTo(_plain.AsSpan(_filled));
            _filled += take;
            _plaintextLength += take;
            buffer = buffer[take..];
        }
    }

    /// <summary>Seals the final segment and flushes. Nothing written after this is accepted.</summary>
    public async ValueTask CompleteAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        var length = Seal(final: true);
        await WriteHeaderOnceAsync(cancellationToken).ConfigureAwait(false);
        await _inner.WriteAsync(_sealed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        _completed = true;
    }

    public void Complete()
    {
        ThrowIfCompleted();
        var length = Seal(final: true);
        WriteHeaderOnce();
        _inner.Write(_sealed, 0, length);
        _inner.Flush();
        _completed = true;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReleaseBuffers();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        ReleaseBuffers();
        if (!_leaveOpen)
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }

        GC.SuppressFinalize(this);
    }

    private int Seal(bool final)
    {
        Span<byte> nonce = stackalloc byte[SegmentedEnvelope.NonceSize];
        Span<byte> aad = stackalloc byte[SegmentedEnvelope.AadSize];
        SegmentedEnvelope.SegmentParameters(_header, _objectIndex, _segment, final, nonce, aad);
        _cipher.Encrypt(nonce, _plain.AsSpan(0, _filled), _sealed.AsSpan(0, _filled), _sealed.AsSpan(_filled, SegmentedEnvelope.TagLength), aad);
        var length = _filled + SegmentedEnvelope.TagLength;
        _filled = 0;
        _segment = checked(_segment + 1);
        return length;
    }

    private void WriteHeaderOnce()
    {
        if (!_headerWritten)
        {
            _inner.Write(_header);
            _headerWritten = true;
        }
    }

    private async ValueTask WriteHeaderOnceAsync(CancellationToken cancellationToken)
    {
        if (!_headerWritten)
        {
            await _inner.WriteAsync(_header, cancellationToken).ConfigureAwait(false);
            _headerWritten = true;
        }
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("the envelope is already sealed");
        }
    }

    private bool _released;

    private void ReleaseBuffers()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        CryptographicOperations.ZeroMemory(_plain);
        ArrayPool<byte>.Shared.Return(_plain);
        ArrayPool<byte>.Shared.Return(_sealed);
        _cipher.Dispose();
    }
}
