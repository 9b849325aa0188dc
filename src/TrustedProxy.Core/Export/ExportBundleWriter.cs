using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Records;

namespace TrustedProxy.Export;

/// <summary>
/// Writes a bundle front to back, in one pass and bounded memory (one segment per record): the
/// header, then for each record its handle, view, wrapped content key and sealed segments, then
/// the signature over everything before it. Nothing is written out of order, so the output may be
/// an HTTP response. Records are added one at a time: <see cref="BeginRecordAsync"/>, write the
/// plaintext to the stream it returns, then <see cref="ExportRecordStream.CompleteAsync"/>.
/// </summary>
internal sealed class ExportBundleWriter : IDisposable
{
    private readonly Stream _output;
    private readonly ExportRecipient _recipient;
    private readonly ExportSigner _signer;
    private readonly int _recordCount;
    private readonly int _segmentSize;
    private readonly ExportOptions _options;
    private readonly IncrementalHash _transcript = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _bundleBytes;
    private int _written;
    private ExportRecordStream? _open;

    private ExportBundleWriter(Stream output, ExportRecipient recipient, ExportSigner signer, int recordCount, ExportOptions options)
    {
        _output = output;
        _recipient = recipient;
        _signer = signer;
        _recordCount = recordCount;
        _segmentSize = options.SegmentSize;
        _options = options;
        _transcript.AppendData(ExportFormat.SignatureLabel);
    }

    /// <summary>The bundle's random identifier (also in the audit entry of the export).</summary>
    public byte[] BundleId { get; } = RandomNumberGenerator.GetBytes(ExportFormat.BundleIdLength);

    /// <summary>Writes the header of a bundle that will carry exactly <paramref name="recordCount"/> records.</summary>
    public static async Task<ExportBundleWriter> StartAsync(Stream output, ExportRecipient recipient, ExportSigner signer, int recordCount, ExportOptions options, DateTimeOffset created, CancellationToken cancellationToken)
    {
        var writer = Create(output, recipient, signer, recordCount, options);
        await writer.WriteHeaderAsync(created, cancellationToken).ConfigureAwait(false);
        return writer;
    }

    /// <summary>A writer whose bundle id is drawn but nothing written yet (the caller records the export first).</summary>
    public static ExportBundleWriter Create(Stream output, ExportRecipient recipient, ExportSigner signer, int recordCount, ExportOptions options)
    {
        if (recordCount < 0 || recordCount > options.MaxRecords)
        {
            throw new ExportBundleException($"a bundle carries at most {options.MaxRecords} records (TrustedProxy:Export:MaxRecords); {recordCount} were asked for");
        }

        // The reader refuses any other segment size, so the writer must never produce one.
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SegmentSize, ExportFormat.MinSegmentSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.SegmentSize, ExportFormat.MaxSegmentSize);

        return new ExportBundleWriter(output, recipient, signer, recordCount, options);
    }

    /// <summary>The header: magic, version, bundle id, creation time, segment size, record count, recipient key id, signer certificate.</summary>
    public async Task WriteHeaderAsync(DateTimeOffset created, CancellationToken cancellationToken)
    {
        var cert = _signer.CertificateDer;
        var header = new byte[ExportFormat.Magic.Length + 1 + ExportFormat.BundleIdLength + 8 + 4 + 4 + ExportFormat.KeyIdLength + 2 + cert.Length];
        var span = header.AsSpan();
        ExportFormat.Magic.CopyTo(span);
        span = span[ExportFormat.Magic.Length..];
        span[0] = ExportFormat.Version;
        BundleId.CopyTo(span[1..]);
        span = span[(1 + ExportFormat.BundleIdLength)..];
        BinaryPrimitives.WriteInt64BigEndian(span, created.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt32BigEndian(span[8..], _segmentSize);
        BinaryPrimitives.WriteInt32BigEndian(span[12..], _recordCount);
        _recipient.KeyId.CopyTo(span[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(span[(16 + ExportFormat.KeyIdLength)..], checked((ushort)cert.Length));
        cert.CopyTo(span[(18 + ExportFormat.KeyIdLength)..]);
        await WriteAsync(header, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts the next record: a fresh content key, wrapped to the recipient; returns the stream its plaintext is written to.</summary>
    public async Task<ExportRecordStream> BeginRecordAsync(string handle, string view, CancellationToken cancellationToken)
    {
        if (_open is { Completed: false })
        {
            throw new InvalidOperationException("the previous record is not complete");
        }

        if (_written >= _recordCount)
        {
            throw new InvalidOperationException($"the bundle was started for {_recordCount} records");
        }

        if (!RecordHandle.IsWellFormed(handle) || !ExportFormat.IsLabel(view))
        {
            throw new ArgumentException("a bundle carries record handles, and views of 1 to 255 printable ASCII characters");
        }

        var index = _written++;
        var contentKey = RandomNumberGenerator.GetBytes(ExportFormat.ContentKeyLength);
        try
        {
            var (ephemeral, wrapped) = _recipient.Wrap(contentKey, BundleId, index, handle, view);
            var h = Encoding.ASCII.GetBytes(handle);
            var v = Encoding.ASCII.GetBytes(view);
            var head = new byte[2 + h.Length + v.Length + ephemeral.Length + wrapped.Length];
            head[0] = (byte)h.Length;
            h.CopyTo(head, 1);
            head[1 + h.Length] = (byte)v.Length;
            v.CopyTo(head, 2 + h.Length);
            ephemeral.CopyTo(head, 2 + h.Length + v.Length);
            wrapped.CopyTo(head, 2 + h.Length + v.Length + ephemeral.Length);
            await WriteAsync(head, cancellationToken).ConfigureAwait(false);
            _open = new ExportRecordStream(this, contentKey, index, _segmentSize);
            return _open;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contentKey);
        }
    }

    /// <summary>Writes the signature; the bundle is complete once this returns. Every record announced must have been written.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        if (_written != _recordCount || _open is { Completed: false })
        {
            throw new InvalidOperationException($"the bundle was started for {_recordCount} records and {_written} were written");
        }

        var signature = _signer.Sign(_transcript.GetHashAndReset());
        var trailer = new byte[2 + signature.Length];
        BinaryPrimitives.WriteUInt16BigEndian(trailer, checked((ushort)signature.Length));
        signature.CopyTo(trailer, 2);
        await _output.WriteAsync(trailer, cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Counts a record's plaintext against the limits a recipient's reader applies by default, so
    /// that the proxy never sends a bundle its recipient would refuse for size; a record that grows
    /// past them (a de-identified view is sized only as it streams) aborts the bundle unsigned.
    /// </summary>
    internal void Count(long recordBytes, int added)
    {
        _bundleBytes += added;
        if (recordBytes > _options.MaxRecordBytes)
        {
            throw new ExportBundleException($"a record is larger than the {_options.MaxRecordBytes} bytes a bundle may carry for one (TrustedProxy:Export:MaxRecordBytes)");
        }

        if (_bundleBytes > _options.MaxBundleBytes)
        {
            throw new ExportBundleException($"the records add up to more than the {_options.MaxBundleBytes} bytes a bundle may carry (TrustedProxy:Export:MaxBundleBytes)");
        }
    }

    internal async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        _transcript.AppendData(bytes.Span);
        await _output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _open?.Dispose();
        _transcript.Dispose();
    }
}

/// <summary>
/// One record's plaintext going into a bundle: buffered to a segment, sealed with AES-256-GCM under
/// the record's content key, framed (length with the final flag) and written. Write-only, forward-only.
/// The last segment (0 … S bytes) is sealed as final by <see cref="CompleteAsync"/>; a record never
/// completed leaves the bundle unsigned, which the reader refuses.
/// </summary>
internal sealed class ExportRecordStream : Stream
{
    private readonly ExportBundleWriter _writer;
    private readonly AesGcm _aes;
    private readonly int _index;
    private readonly byte[] _plain;
    private readonly byte[] _frame;
    private int _filled;
    private uint _segment;

    internal ExportRecordStream(ExportBundleWriter writer, byte[] contentKey, int index, int segmentSize)
    {
        _writer = writer;
        _aes = new AesGcm(contentKey, ExportFormat.TagLength);
        _index = index;
        _plain = ArrayPool<byte>.Shared.Rent(segmentSize);
        _frame = ArrayPool<byte>.Shared.Rent(4 + segmentSize + ExportFormat.TagLength);
        SegmentSize = segmentSize;
    }

    public bool Completed { get; private set; }

    /// <summary>Plaintext bytes written so far.</summary>
    public long Written { get; private set; }

    private int SegmentSize { get; }

    private bool _released;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !Completed && !_released;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Completed || _released, this);
        while (!buffer.IsEmpty)
        {
            if (_filled == 0 && buffer.Length >= SegmentSize)
            {
                // A whole segment in the caller's buffer is sealed from there, without a copy.
                Written += SegmentSize;
                _writer.Count(Written, SegmentSize);
                await SealAsync(buffer[..SegmentSize], final: false, cancellationToken).ConfigureAwait(false);
                buffer = buffer[SegmentSize..];
                continue;
            }

            var take = Math.Min(buffer.Length, SegmentSize - _filled);
            buffer[..take].CopyTo(_plain.AsMemory(_filled));
            _filled += take;
            Written += take;
            _writer.Count(Written, take);
            buffer = buffer[take..];
            if (_filled == SegmentSize)
            {
                // A full segment is sealed as a middle one at once; the final one, possibly empty, comes at completion.
                await SealAsync(_plain.AsMemory(0, _filled), final: false, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Seals the last segment; the record is then complete.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Completed || _released, this);
        await SealAsync(_plain.AsMemory(0, _filled), final: true, cancellationToken).ConfigureAwait(false);
        Completed = true;
        Release();
    }

    private async ValueTask SealAsync(ReadOnlyMemory<byte> plaintext, bool final, CancellationToken cancellationToken)
    {
        if (_segment == uint.MaxValue)
        {
            throw new InvalidOperationException("a record has at most 2^32 - 1 segments");
        }

        Seal(plaintext.Span, final);
        _segment++;
        await _writer.WriteAsync(_frame.AsMemory(0, 4 + plaintext.Length + ExportFormat.TagLength), cancellationToken).ConfigureAwait(false);
        _filled = 0;
    }

    private void Seal(ReadOnlySpan<byte> plaintext, bool final)
    {
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> aad = stackalloc byte[ExportFormat.SegmentAssociatedDataLength];
        ExportFormat.SegmentNonce(nonce, _segment, final);
        ExportFormat.SegmentAssociatedData(aad, _writer.BundleId, _index, _segment, final);
        BinaryPrimitives.WriteUInt32BigEndian(_frame, (uint)plaintext.Length | (final ? ExportFormat.FinalFlag : 0));
        _aes.Encrypt(nonce, plaintext, _frame.AsSpan(4, plaintext.Length), _frame.AsSpan(4 + plaintext.Length, ExportFormat.TagLength), aad);
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Release();
        }

        base.Dispose(disposing);
    }

    private void Release()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _aes.Dispose();
        CryptographicOperations.ZeroMemory(_plain);
        ArrayPool<byte>.Shared.Return(_plain);
        ArrayPool<byte>.Shared.Return(_frame);
    }
}
