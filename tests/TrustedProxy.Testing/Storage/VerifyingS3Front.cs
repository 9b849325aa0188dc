using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace TrustedProxy.Testing.Storage;

/// <summary>
/// The test cloud that checks what s3rver does not: an in-process Kestrel server on a loopback port
/// in front of a real emulator, forwarding every request after checking it as AWS S3 does (the
/// body's SHA-256 against <c>x-amz-content-sha256</c>, <c>Content-MD5</c>, the
/// <c>x-amz-checksum-*</c> headers, <c>If-None-Match: *</c> on PUT), and recording every request as
/// the cloud sees it. s3rver 3.7.1 checks none of these: it stores a body whatever its declared
/// digests say and overwrites despite <c>If-None-Match: *</c>.
/// </summary>
/// <remarks>
/// Request bodies are buffered in memory (objects in tests are at most a few MiB) so they can be
/// hashed before anything is forwarded, as S3 refuses a mismatching body before storing any of it;
/// responses stream through. Upstream being unreachable (the emulator stopped, an outage) drops the
/// client's connection, as an unreachable cloud would.
/// </remarks>
public sealed class VerifyingS3Front : IAsyncDisposable
{
    private const string UnsignedPayload = "UNSIGNED-PAYLOAD";
    private const int PrefixLength = 64;

    // Hop-by-hop and framing headers are the two HTTP stacks' business, not the request's.
    private static readonly HashSet<string> NotForwarded = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Expect", "TE", "Upgrade", "Proxy-Connection", "Content-Length",
    };

    private readonly List<WireRequest> _requests = [];
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _keyLocks = new(StringComparer.Ordinal);
    private readonly HttpClient _upstream;
    private readonly Uri _upstreamAddress;
    private readonly EmulatorProcess? _ownedEmulator;
    private readonly bool _enforceIfNoneMatch;
    private WebApplication? _app;

    private VerifyingS3Front(EmulatorProcess upstream, bool ownsUpstream, bool enforceIfNoneMatch, string upstreamAddress)
    {
        Upstream = upstream;
        _ownedEmulator = ownsUpstream ? upstream : null;
        _enforceIfNoneMatch = enforceIfNoneMatch;
        _upstreamAddress = new Uri(upstreamAddress);

        // The front's own client must add nothing of its own (no trace headers, no proxy, no cookies).
        _upstream = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false, AllowAutoRedirect = false, ActivityHeadersPropagator = null })
        {
            Timeout = TimeSpan.FromSeconds(100),
        };
    }

    /// <summary>The emulator behind the front; stop and start it to simulate an outage.</summary>
    public EmulatorProcess Upstream { get; }

    /// <summary>The front's base address, for example <c>http://127.0.0.1:41234</c>.</summary>
    public string ServiceUrl { get; private set; } = string.Empty;

    /// <summary>
    /// Decides, for each request (before any check or forwarding), whether the front refuses it with
    /// an S3-style error instead, for example a 400 BadDigest or 403 AccessDenied for chosen keys.
    /// </summary>
    public Func<WireRequest, (int Status, string Code)?>? Refuse { get; set; }

    /// <summary>
    /// While true the cloud is unreachable: every request is recorded and its connection dropped,
    /// nothing reaches the store. An outage as S3 has one: a PUT either landed whole or not at all
    /// (killing the emulator mid-write instead can leave a half-written object, which S3 never does).
    /// </summary>
    public bool Unreachable { get; set; }

    /// <summary>Every request so far, in arrival order (a snapshot).</summary>
    public IReadOnlyList<WireRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return _requests.ToArray();
            }
        }
    }

    /// <summary>Forgets the recorded requests.</summary>
    public void Clear()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    /// <summary>A new s3rver with this front before it; disposing the front stops the emulator.</summary>
    public static async Task<VerifyingS3Front> StartAsync()
    {
        var s3rver = await EmulatorProcess.StartS3rverAsync();
        try
        {
            return await StartAsync(new VerifyingS3Front(s3rver, ownsUpstream: true, enforceIfNoneMatch: true, s3rver.S3ServiceUrl));
        }
        catch
        {
            await s3rver.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A recording, verifying front before Azurite (which honours <c>If-None-Match</c> itself, and
    /// refuses the front's own unauthenticated HEAD): for looking at Azure's requests on the wire.
    /// The caller keeps ownership of the emulator.
    /// </summary>
    public static Task<VerifyingS3Front> StartBeforeAzuriteAsync(EmulatorProcess azurite) =>
        StartAsync(new VerifyingS3Front(azurite, ownsUpstream: false, enforceIfNoneMatch: false, azurite.S3ServiceUrl));

    /// <summary>The S3 backend's settings pointing at this front.</summary>
    public BackendSettings Settings(string? bucket = null) => BackendSettings.S3(ServiceUrl, bucket);

    /// <summary>The Azure connection string for Azurite's well-known account, pointing at this front.</summary>
    public string AzuriteConnectionString =>
        Upstream.AzuriteConnectionString.Replace($"http://127.0.0.1:{Upstream.Port}/", ServiceUrl + "/", StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _upstream.Dispose();
        if (_ownedEmulator is not null)
        {
            await _ownedEmulator.DisposeAsync();
        }
    }

    private static async Task<VerifyingS3Front> StartAsync(VerifyingS3Front front)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);

            // Objects are a few MiB; S3 itself takes 5 GiB in one PUT.
            kestrel.Limits.MaxRequestBodySize = null;
        });
        var app = builder.Build();
        app.Run(front.HandleAsync);
        await app.StartAsync();
        front._app = app;
        var address = app.Urls.First();
        front.ServiceUrl = address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/');
        return front;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, context.RequestAborted);
        var body = buffer.ToArray();
        var headers = request.Headers.SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v ?? string.Empty))).ToList();
        var wire = new WireRequest(
            DateTimeOffset.UtcNow,
            request.Method,
            request.Path.Value ?? "/",
            request.QueryString.Value ?? string.Empty,
            headers,
            body.Length,
            Convert.ToHexStringLower(SHA256.HashData(body)),
            body.AsSpan(0, Math.Min(PrefixLength, body.Length)).ToArray());

        if (Unreachable)
        {
            Record(wire with { Status = 0, FrontError = "Unreachable" });
            context.Abort();
            return;
        }

        var verdict = Refuse?.Invoke(wire) ?? Verify(wire, body);
        if (verdict is { } error)
        {
            Record(wire with { Status = error.Status, FrontError = error.Code });
            await WriteErrorAsync(context, error.Status, error.Code);
            return;
        }

        // Writes and deletes of one key are serialised so that If-None-Match is checked and acted on
        // atomically, as S3 does it.
        var isWrite = HttpMethods.IsPut(request.Method) || HttpMethods.IsDelete(request.Method);
        var keyLock = isWrite ? _keyLocks.GetOrAdd(wire.Path, _ => new SemaphoreSlim(1, 1)) : null;
        if (keyLock is not null)
        {
            await keyLock.WaitAsync(context.RequestAborted);
        }

        try
        {
            if (_enforceIfNoneMatch && HttpMethods.IsPut(request.Method) && wire.Header("If-None-Match") == "*" && await ExistsUpstreamAsync(wire, context.RequestAborted))
            {
                Record(wire with { Status = 412, FrontError = "PreconditionFailed" });
                await WriteErrorAsync(context, 412, "PreconditionFailed");
                return;
            }

            await ForwardAsync(context, wire, body);
        }
        catch (HttpRequestException)
        {
            // Upstream unreachable (the emulator stopped): the cloud is gone, so the connection is too.
            Record(wire with { Status = 0, FrontError = "UpstreamUnreachable" });
            context.Abort();
        }
        finally
        {
            keyLock?.Release();
        }
    }

    /// <summary>The checks AWS S3 makes of a request's declared digests; null when they all hold.</summary>
    private static (int Status, string Code)? Verify(WireRequest wire, byte[] body)
    {
        var declared = wire.Header("x-amz-content-sha256");
        if (declared is not null && declared != UnsignedPayload)
        {
            if (declared.StartsWith("STREAMING-", StringComparison.Ordinal))
            {
                // aws-chunked framing would need its chunk signatures checked; the stores never send it
                // (s3rver would store the framing as the object), so it is refused rather than waved through.
                return (501, "NotImplemented");
            }

            if (!string.Equals(declared, wire.BodySha256, StringComparison.OrdinalIgnoreCase))
            {
                return (400, "XAmzContentSHA256Mismatch");
            }
        }

        var checks = new (string Header, Func<byte[], string> Compute)[]
        {
            ("Content-MD5", b => Convert.ToBase64String(MD5.HashData(b))),
            ("x-amz-checksum-crc32", b => Crc32Table.Ieee.ComputeBase64(b)),
            ("x-amz-checksum-crc32c", b => Crc32Table.Castagnoli.ComputeBase64(b)),
            ("x-amz-checksum-sha1", b => Convert.ToBase64String(SHA1.HashData(b))),
            ("x-amz-checksum-sha256", b => Convert.ToBase64String(SHA256.HashData(b))),
        };
        foreach (var (header, compute) in checks)
        {
            if (wire.Header(header) is { } value && value != compute(body))
            {
                return (400, "BadDigest");
            }
        }

        return null;
    }

    private async Task<bool> ExistsUpstreamAsync(WireRequest wire, CancellationToken cancellationToken)
    {
        // s3rver serves anonymous requests, so the front's own HEAD needs no signature.
        using var head = new HttpRequestMessage(HttpMethod.Head, new Uri(_upstreamAddress, wire.Path));
        using var response = await _upstream.SendAsync(head, cancellationToken);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private async Task ForwardAsync(HttpContext context, WireRequest wire, byte[] body)
    {
        using var forward = new HttpRequestMessage(new HttpMethod(wire.Method), new Uri(_upstreamAddress, wire.Path + wire.Query));
        if (body.Length > 0 || HttpMethods.IsPut(wire.Method) || HttpMethods.IsPost(wire.Method))
        {
            forward.Content = new ByteArrayContent(body);
        }

        foreach (var (name, value) in wire.Headers)
        {
            if (NotForwarded.Contains(name))
            {
                continue;
            }

            // Host is forwarded as sent: it is part of what the client signed.
            if (!forward.Headers.TryAddWithoutValidation(name, value))
            {
                forward.Content ??= new ByteArrayContent([]);
                forward.Content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using (var response = await _upstream.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted))
        {
            Record(wire with { Status = (int)response.StatusCode });
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!NotForwarded.Contains(name) || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }

            if (!HttpMethods.IsHead(wire.Method))
            {
                await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
            }
        }
    }

    private static async Task WriteErrorAsync(HttpContext context, int status, string code)
    {
        context.Response.StatusCode = status;

        // Azure's SDK reads the code from this header (S3's from the XML body), so one front serves both.
        context.Response.Headers["x-ms-error-code"] = code;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        var xml = $"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>refused by the verifying test front</Message><RequestId>{Guid.NewGuid():N}</RequestId></Error>";
        var bytes = Encoding.UTF8.GetBytes(xml);
        context.Response.ContentType = "application/xml";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    private void Record(WireRequest wire)
    {
        lock (_requests)
        {
            _requests.Add(wire);
        }
    }
}
