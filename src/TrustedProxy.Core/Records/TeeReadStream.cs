using System.Security.Cryptography;

namespace TrustedProxy.Records;

/// <summary>
/// Passes every byte read from the request body on to the encryptor and the content hash as it
/// goes, so the DICOM reader, the encryption and the digest see one single pass over the data.
/// </summary>
internal sealed class TeeReadStream(Stream source, Stream sink, IncrementalHash hash) : Stream
{
    public long BytesRead { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (read > 0)
        {
            hash.AppendData(buffer.Span[..read]);
            await sink.WriteAsync(buffer[..read], cancellationToken).ConfigureAwait(false);
            BytesRead += read;
        }

        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Request bodies are read asynchronously only; a synchronous read here would be a bug.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("read asynchronously");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
