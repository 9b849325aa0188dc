using TrustedProxy.IO;

namespace TrustedProxy.Dicom;

/// <summary>Reads a stream while keeping a copy of every byte read.</summary>
internal sealed class CopyingStream(Stream source, Stream copy) : ForwardReadStream
{
    public override int Read(Span<byte> buffer)
    {
        var read = source.Read(buffer);
        copy.Write(buffer[..read]);
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        copy.Write(buffer.Span[..read]);
        return read;
    }
}
