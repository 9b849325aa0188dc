namespace TrustedProxy.Records;

/// <summary>
/// Where a large upload's bytes go while its header is read: held in memory until the record is
/// decided on (<see cref="OpenAsync"/>), so that a refused upload creates no cache file and costs
/// no encryption; then everything, held bytes first, goes to the target the decision opened.
/// Bytes held are bounded: an upload whose identifying attributes lie behind more than
/// <c>limit</c> bytes (bulk data before its patient and study, which Part 10 order rules out for
/// standard attributes but not for private ones) opens the target early, as if decided, and is
/// judged only when its attributes arrive.
/// </summary>
internal sealed class DecisionGate(long limit, Func<CancellationToken, Task<Stream>> open) : Stream
{
    private MemoryStream? _held = new();
    private Stream? _target;

    /// <summary>Whether the target was opened (the decision came, or the held bytes outgrew the limit).</summary>
    public bool Opened => _target is not null;

    /// <summary>Opens the target and hands it what is held; later writes go straight to it. Idempotent.</summary>
    public async Task<Stream> OpenAsync(CancellationToken cancellationToken)
    {
        if (_target is null)
        {
            var target = await open(cancellationToken).ConfigureAwait(false);
            await target.WriteAsync(_held!.GetBuffer().AsMemory(0, (int)_held.Length), cancellationToken).ConfigureAwait(false);
            _target = target;
            _held = null;
        }

        return _target;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_target is not null)
        {
            await _target.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        _held!.Write(buffer.Span);
        if (_held.Length > limit)
        {
            await OpenAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Request bodies are written asynchronously only; a synchronous write here would be a bug.
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("write asynchronously");

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
