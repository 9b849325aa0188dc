using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// The proxy's own limits on the request target and the header block, answered as problem+json
/// (414, 431). Kestrel refuses what is over its limits itself, before any middleware runs, with a
/// status and no body; so Kestrel's limits are set to twice the proxy's, and everything between
/// the two is refused here, where a body can be written. Past Kestrel's ceiling, and for a request
/// line Kestrel cannot parse, the answer stays Kestrel's bare one (docs/api.md).
/// </summary>
internal sealed class RequestSizeLimits(RequestDelegate next, ProxyServerOptions options)
{
    // Kestrel's ceiling over the proxy's limit: wide enough that a client a little over the limit
    // is told why, small enough that Kestrel never buffers much more than the proxy accepts.
    private const int KestrelHeadroom = 2;

    public static void ConfigureKestrel(KestrelServerLimits limits, ProxyServerOptions options)
    {
        // The request line is the method, the target and the version: the target's ceiling plus room for the rest.
        limits.MaxRequestLineSize = (options.MaxRequestTargetBytes * KestrelHeadroom) + 64;
        limits.MaxRequestHeadersTotalSize = options.MaxRequestHeaderBytes * KestrelHeadroom;
    }

    public Task InvokeAsync(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? string.Empty;
        if (target.Length > options.MaxRequestTargetBytes)
        {
            return Problem.Write(context, ProblemTypes.UriTooLong, $"the request target (path and query) is longer than {options.MaxRequestTargetBytes} bytes (TrustedProxy:Server:MaxRequestTargetBytes)");
        }

        if (HeaderBytes(context.Request.Headers) > options.MaxRequestHeaderBytes)
        {
            return Problem.Write(context, ProblemTypes.HeadersTooLarge, $"the request's headers are larger than {options.MaxRequestHeaderBytes} bytes together (TrustedProxy:Server:MaxRequestHeaderBytes)");
        }

        return next(context);
    }

    // Counted as HTTP/1.1 sends them ("name: value" and CRLF per line), as Kestrel counts its own limit.
    private static long HeaderBytes(IHeaderDictionary headers)
    {
        long total = 0;
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                total += name.Length + (value?.Length ?? 0) + 4;
            }
        }

        return total;
    }
}
