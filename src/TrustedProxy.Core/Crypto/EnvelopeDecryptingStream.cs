using System.Buffers;
using System.Security.Cryptography;
using TrustedProxy.IO;

namespace TrustedProxy.Crypto;

/// <summary>
/// A read-only stream that authenticates and decrypts the segmented envelope format. Only
/// authenticated segments are released; a segment that fails, a missing final segment or a
/// length that differs from the expected one throws <see cref="EnvelopeIntegrityException"/>.
/// </summary>
/// <remarks>
/// With the expected plaintext length (the proxy always has it, from its index), the reader knows
/// the size of every segment and which one is final, so bytes after the final segment (size
/// padding) are never read. Without it, the object must end with its final segment.
/// </remarks>
internal sealed class EnvelopeDecryptingStream : ForwardReadStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly DataKey _dataKey;
    private readonly byte[] _objectIndex;
    private readonly long? _expectedLength;
    private byte[] _header = [];
    private AesGcm? _cipher;
    private int _segmentSize;
    private byte[]? _sealed;
    private byte[]? _plain;
    private int _plainOffset;
    private int _plainCount;
    private uint _segment;
    private bool _finalSeen;
    private long _released;

    public EnvelopeDecryptingStream(Stream inner, DataKey dataKey, ReadOnlySpan<byte> objectIndex, long? expectedPlaintextLength = null, bool leaveOpen = false)
    {
        _inner = inner;
        _dataKey = dataKey;
        _objectIndex = objectIndex.ToArray();
        _expectedLength = expectedPlaintextLength;
        _leaveOpen = leaveOpen;
    }

    public override int Read(Span<byte> buffer)
    {
        if (_plainCount == 0 && !_finalSeen)
        {
            EnsureHeader();
            var wanted = NextSealedLength();
            var read = _inner.ReadAtLeast(_sealed.AsSpan(0, wanted), wanted, throwOnEndOfStream: false);
            OpenSegment(read, wanted, _plain);
        }

        return Drain(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_plainCount == 0 && !_finalSeen)
        {
            await EnsureHeaderAsync(cancellationToken).ConfigureAwait(false);
            var wanted = NextSealedLength();
            var read = await _inner.ReadAtLeastAsync(_sealed.AsMemory(0, wanted), wanted, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);

            // A reader whose buffer takes the whole segment (a record decrypted into memory) gets it
            // decrypted straight there, rather than into ours and then copied.
            if (read >= SegmentedEnvelope.TagLength && buffer.Length >= read - SegmentedEnvelope.TagLength)
            {
                OpenSegment(read, wanted, buffer.Span);
                var opened = _plainCount;
                _plainCount = 0;
                return opened;
            }

            OpenSegment(read, wanted, _plain);
        }

        return Drain(buffer.Span);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Release();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        Release();
        if (!_leaveOpen)
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }

        GC.SuppressFinalize(this);
    }

    private int Drain(Span<byte> buffer)
    {
        var take = Math.Min(buffer.Length, _plainCount);
        _plain.AsSpan(_plainOffset, take).CopyTo(buffer);
        _plainOffset += take;
        _plainCount -= take;
        return take;
    }

    // How many sealed bytes the next segment has: exact when the plaintext length is known,
    // otherwise a full segment (or whatever is left, which then must be the final one).
    private int NextSealedLength()
    {
        if (_expectedLength is not { } expected)
        {
            return _segmentSize + SegmentedEnvelope.TagLength;
        }

        var remaining = expected - _released;
        return (int)Math.Min(_segmentSize, Math.Max(0, remaining)) + SegmentedEnvelope.TagLength;
    }

    private bool IsFinalByLength(int plainLength) => _expectedLength is { } expected && _released + plainLength == expected;

    private void OpenSegment(int sealedLength, int wanted, Span<byte> plain)
    {
        if (sealedLength == 0)
        {
            throw new EnvelopeIntegrityException($"the stored object ends after segment {_segment} without a final segment (truncated)");
        }

        if (sealedLength < SegmentedEnvelope.TagLength || (_expectedLength is not null && sealedLength < wanted))
        {
            throw new EnvelopeIntegrityException($"segment {_segment} is shorter than it must be (truncated)");
        }

        var plainLength = sealedLength - SegmentedEnvelope.TagLength;
        if (_expectedLength is not null)
        {
            // Length known: exactly one reading is right.
            var final = IsFinalByLength(plainLength);
            if (!TryOpen(plainLength, final, plain))
            {
                throw Altered();
            }

            Advance(plainLength, final);
            return;
        }

        // Length unknown: a full-length segment is a middle one or the last; it is tried as a
        // middle segment first, so only the very last full segment costs a second attempt.
        if (plainLength == _segmentSize && TryOpen(plainLength, final: false, plain))
        {
            Advance(plainLength, final: false);
        }
        else if (TryOpen(plainLength, final: true, plain))
        {
            Advance(plainLength, final: true);
        }
        else
        {
            throw Altered();
        }
    }

    private EnvelopeIntegrityException Altered() =>
        new($"segment {_segment} failed authentication: the stored object was altered, reordered, truncated or belongs to another record");

    private bool TryOpen(int plainLength, bool final, Span<byte> plain)
    {
        Span<byte> nonce = stackalloc byte[SegmentedEnvelope.NonceSize];
        Span<byte> aad = stackalloc byte[SegmentedEnvelope.AadSize];
        SegmentedEnvelope.SegmentParameters(_header, _objectIndex, _segment, final, nonce, aad);
        try
        {
            _cipher!.Decrypt(nonce, _sealed.AsSpan(0, plainLength), _sealed.AsSpan(plainLength, SegmentedEnvelope.TagLength), plain[..plainLength], aad);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }

    private void Advance(int plainLength, bool final)
    {
        _plainOffset = 0;
        _plainCount = plainLength;
        _released += plainLength;
        _segment = checked(_segment + 1);
        _finalSeen = final;
        if (_expectedLength is { } expected && (_released > expected || (final && _released != expected)))
        {
            _plainCount = 0;
            throw new EnvelopeIntegrityException($"the stored object decrypts to {_released} bytes where the index records {expected}");
        }
    }

    private void EnsureHeader()
    {
        if (_cipher is not null)
        {
            return;
        }

        var header = new byte[SegmentedEnvelope.HeaderLength];
        var read = _inner.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        InitializeFrom(header, read);
    }

    private async ValueTask EnsureHeaderAsync(CancellationToken cancellationToken)
    {
        if (_cipher is not null)
        {
            return;
        }

        var header = new byte[SegmentedEnvelope.HeaderLength];
        var read = await _inner.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        InitializeFrom(header, read);
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_sealed), nameof(_plain))]
    private void InitializeFrom(byte[] header, int read)
    {
        if (read != header.Length)
        {
            throw new EnvelopeIntegrityException("the stored object is shorter than an envelope header (truncated)");
        }

        _segmentSize = SegmentedEnvelope.ParseHeader(header);
        _header = header;
        _cipher = SegmentedEnvelope.CreateCipher(_dataKey, header, _objectIndex);
        _sealed = ArrayPool<byte>.Shared.Rent(_segmentSize + SegmentedEnvelope.TagLength);
        _plain = ArrayPool<byte>.Shared.Rent(_segmentSize);
    }

    private void Release()
    {
        _cipher?.Dispose();
        _cipher = null;
        if (_plain is not null)
        {
            CryptographicOperations.ZeroMemory(_plain);
            ArrayPool<byte>.Shared.Return(_plain);
            _plain = null;
        }

        if (_sealed is not null)
        {
            ArrayPool<byte>.Shared.Return(_sealed);
            _sealed = null;
        }
    }
}
