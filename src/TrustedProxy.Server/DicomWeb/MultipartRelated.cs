using System.Security.Cryptography;
using System.Text;
using Microsoft.Net.Http.Headers;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>Writes a multipart/related response part by part (RFC 2387), as WADO-RS retrievals are sent.</summary>
internal sealed class MultipartRelatedWriter(Stream output)
{
    // Every write to a response body is flushed (a TLS record, a send), so the CRLF that ends a
    // part's body (RFC 2046: it belongs to the next delimiter) goes out with the next part's head
    // or the closing delimiter: two writes a part, not three.
    private bool _partOpen;

    public string Boundary { get; } = "tproxy-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public string ContentType(string type) => $"multipart/related; type=\"{type}\"; boundary={Boundary}";

    /// <param name="contentType">The part's Content-Type.</param>
    /// <param name="writeBody">Writes the part's body.</param>
    /// <param name="cancellationToken">Stops the write.</param>
    /// <param name="headers">Further part headers (ASCII names and values, no line breaks).</param>
    public async Task WritePartAsync(string contentType, Func<Stream, Task> writeBody, CancellationToken cancellationToken, IEnumerable<(string Name, string Value)>? headers = null)
    {
        var head = new StringBuilder(_partOpen ? "\r\n" : string.Empty).Append($"--{Boundary}\r\nContent-Type: {contentType}\r\n");
        foreach (var (name, value) in headers ?? [])
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        await output.WriteAsync(Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()), cancellationToken);
        _partOpen = true;
        await writeBody(output);
    }

    public async Task CompleteAsync(CancellationToken cancellationToken) =>
        await output.WriteAsync(Encoding.ASCII.GetBytes($"{(_partOpen ? "\r\n" : string.Empty)}--{Boundary}--\r\n"), cancellationToken);
}

/// <summary>Reads what a multipart/related request or an Accept header says.</summary>
internal static class MediaTypes
{
    public const string Dicom = "application/dicom";
    public const string DicomJson = "application/dicom+json";
    public const string MultipartRelated = "multipart/related";
    public const int MaxBoundaryLength = 256;

    /// <summary>The boundary of a multipart/related body whose root type is application/dicom (or unstated).</summary>
    public static bool TryGetDicomBoundary(string? contentType, out string boundary, out string? error)
    {
        boundary = string.Empty;
        error = null;
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || !media.MediaType.Equals(MultipartRelated, StringComparison.OrdinalIgnoreCase))
        {
            error = $"STOW-RS takes {MultipartRelated}; type=\"{Dicom}\", not '{contentType}'";
            return false;
        }

        var type = media.Parameters.FirstOrDefault(p => p.Name.Equals("type", StringComparison.OrdinalIgnoreCase))?.Value.ToString().Trim('"');
        if (type is not null && !type.Equals(Dicom, StringComparison.OrdinalIgnoreCase))
        {
            error = $"only type=\"{Dicom}\" parts are stored (not {type})";
            return false;
        }

        // RFC 2046 caps boundaries at 70 characters, but real clients exceed it (Orthanc sends two
        // UUIDs, 73); a bounded leniency costs nothing.
        boundary = HeaderUtilities.RemoveQuotes(media.Boundary).ToString();
        if (boundary.Length is 0 or > MaxBoundaryLength)
        {
            error = $"the multipart boundary is missing or longer than {MaxBoundaryLength} characters";
            return false;
        }

        return true;
    }

    /// <summary>Whether the Accept header admits <paramref name="mediaType"/> (absent, */*, type/*, or the type itself).</summary>
    public static bool Accepts(HttpRequest request, string mediaType, out IReadOnlyList<MediaTypeHeaderValue> matching)
    {
        var accept = request.GetTypedHeaders().Accept;
        if (accept is null || accept.Count == 0)
        {
            matching = [];
            return true;
        }

        var main = mediaType.Split('/')[0];
        matching = accept.Where(a => a.MediaType == "*/*" || a.MediaType.Equals(mediaType, StringComparison.OrdinalIgnoreCase) || a.MediaType.Equals(main + "/*", StringComparison.OrdinalIgnoreCase)).ToList();
        return matching.Count > 0;
    }
}

/// <summary>
/// A read-only view of a multipart section's body that remembers whether reading it threw, so that
/// a failure of the request body (truncated, over a limit) is told apart from a failure of what the
/// proxy does with the bytes (the DICOM reader, local storage).
/// </summary>
internal sealed class ObservedReadStream(Stream inner) : Stream
{
    public Exception? Failure { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        try
        {
            return inner.Read(buffer);
        }
        catch (Exception ex)
        {
            Failure = ex;
            throw;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Failure = ex;
            throw;
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
