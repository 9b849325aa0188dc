using System.Security.Cryptography;
using TrustedProxy.IO;

namespace TrustedProxy.Records;

/// <summary>
/// Passes every byte read from the request body on to the encryptor and the content hash as it
/// goes, so the DICOM reader, the encryption and the digest see one single pass over the data.
/// </summary>
internal sealed class TeeReadStream(Stream source, Stream sink, IncrementalHash hash) : ForwardReadStream
{
    public long BytesRead { get; private set; }

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

    // Request bodies are read asynchronously only; a synchronous read here would be a bug.
    public override int Read(Span<byte> buffer) => throw new NotSupportedException("read asynchronously");
}
