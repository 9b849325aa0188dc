using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// One HTTP request exactly as the cloud received it: every header, and what the body was. This is
/// what a curious provider has, beyond the summary log (<see cref="TrustedProxy.Storage.CloudObservation"/>).
/// </summary>
/// <param name="Sequence">Arrival order at the front.</param>
/// <param name="At">Virtual time of arrival (the engine's clock).</param>
/// <param name="WallTimestamp">Wall-clock arrival (<see cref="Stopwatch.GetTimestamp"/>): gaps within one step of the engine are only visible here.</param>
/// <param name="Method">HTTP verb.</param>
/// <param name="Path">Request path (path-style: /bucket/key).</param>
/// <param name="Headers">Every header as received, names lower-case, in arrival order.</param>
/// <param name="BodyLength">Bytes of body received.</param>
/// <param name="BodySha256">Lower-case hex SHA-256 of the body received.</param>
/// <param name="First64">The first 64 bytes of the body (fewer if shorter).</param>
/// <param name="ByteCounts">How often each byte value occurs in the body.</param>
/// <param name="Status">The status the front answered with.</param>
public sealed record TappedRequest(
    long Sequence, DateTimeOffset At, long WallTimestamp, string Method, string Path, IReadOnlyList<KeyValuePair<string, string>> Headers,
    long BodyLength, string BodySha256, byte[] First64, long[] ByteCounts, int Status)
{
    /// <summary>The object key (path after the bucket), or null for a bucket-level request.</summary>
    public string? Key
    {
        get
        {
            var parts = Path.TrimStart('/').Split('/', 2);
            return parts.Length == 2 && parts[1].Length > 0 ? Uri.UnescapeDataString(parts[1]) : null;
        }
    }

    public string? Header(string name) => Headers.FirstOrDefault(h => h.Key == name).Value;
}

/// <summary>
/// The curious cloud's tap: an in-process HTTP hop between the SDK and the verifying front
/// (<see cref="Storage.VerifyingS3Front"/>, which checks payload hashes and digests as S3 does and
/// passes what it accepts to s3rver). It records every request with all its headers, the body's
/// SHA-256, its first 64 bytes and its byte counts, stamped with a <see cref="TimeProvider"/>'s time
/// (virtual time in the wire test) and the wall clock, and the status the front answered.
/// It forwards everything unchanged, Host included (s3rver checks the signature over it).
/// </summary>
public sealed class WireTap : IAsyncDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase) { "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Keep-Alive" };

    private readonly WebApplication _app;
    private readonly HttpClient _upstream;
    private readonly List<TappedRequest> _requests = [];
    private long _sequence;

    private WireTap(WebApplication app, HttpClient upstream, TimeProvider time, int port)
    {
        _app = app;
        _upstream = upstream;
        Time = time;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The clock requests are stamped with (the write phase's, then the read phase's).</summary>
    public TimeProvider Time { get; set; }

    /// <summary>Requests that have arrived so far (recorded or not yet): a boundary between requests made one after another.</summary>
    public long Arrived => Interlocked.Read(ref _sequence);

    public string ServiceUrl => $"http://127.0.0.1:{Port}";

    /// <summary>Everything received so far, in arrival order.</summary>
    public IReadOnlyList<TappedRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return _requests.OrderBy(r => r.Sequence).ToList();
            }
        }
    }

    public static async Task<WireTap> StartAsync(string upstreamUrl, TimeProvider time)
    {
        var port = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();

        // The front's own outgoing calls must not add anything: no proxy, no decompression, no cookies.
        var upstream = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false, AutomaticDecompression = DecompressionMethods.None, AllowAutoRedirect = false })
        {
            BaseAddress = new Uri(upstreamUrl),
        };
        var front = new WireTap(app, upstream, time, port);
        app.Run(front.HandleAsync);
        await app.StartAsync();
        return front;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var sequence = Interlocked.Increment(ref _sequence) - 1;
        var at = Time.GetUtcNow();
        var wall = Stopwatch.GetTimestamp();
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, context.RequestAborted);
        var body = buffer.ToArray();
        var sha = Convert.ToHexStringLower(SHA256.HashData(body));
        var counts = new long[256];
        foreach (var b in body)
        {
            counts[b]++;
        }

        var headers = request.Headers.SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key.ToLowerInvariant(), v ?? ""))).ToList();
        int status;
        try
        {
            status = await ForwardAsync(context, body);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or IOException)
        {
            // Recorded all the same: the client sees a 502 and the log shows what was asked.
            status = 502;
            if (!context.Response.HasStarted)
            {
                context.Response.StatusCode = status;
            }
        }

        lock (_requests)
        {
            _requests.Add(new TappedRequest(sequence, at, wall, request.Method, request.Path.Value ?? "/", headers, body.Length, sha, body.AsSpan(0, Math.Min(64, body.Length)).ToArray(), counts, status));
        }
    }

    private async Task<int> ForwardAsync(HttpContext context, byte[] body)
    {
        var request = context.Request;
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Path.Value + request.QueryString.Value);
        if (body.Length > 0 || HttpMethods.IsPut(request.Method) || HttpMethods.IsPost(request.Method))
        {
            message.Content = new ByteArrayContent(body);
        }

        foreach (var header in request.Headers)
        {
            if (HopByHop.Contains(header.Key))
            {
                continue;
            }

            if (!message.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value))
            {
                message.Content?.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string?>)header.Value);
            }
        }

        // s3rver checks the signature, which covers the host the client signed: pass it on unchanged.
        message.Headers.Host = request.Host.Value;
        using var response = await _upstream.SendAsync(message, HttpCompletionOption.ResponseContentRead, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var header in response.Headers.Concat(response.Content.Headers))
        {
            if (!HopByHop.Contains(header.Key))
            {
                context.Response.Headers[header.Key] = header.Value.ToArray();
            }
        }

        var content = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
        if (response.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotModified)
        {
            // No body may follow these.
        }
        else if (!HttpMethods.IsHead(request.Method))
        {
            context.Response.ContentLength = content.Length;
            await context.Response.Body.WriteAsync(content, context.RequestAborted);
        }
        else if (response.Content.Headers.ContentLength is { } length)
        {
            context.Response.ContentLength = length;
        }

        return (int)response.StatusCode;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}
