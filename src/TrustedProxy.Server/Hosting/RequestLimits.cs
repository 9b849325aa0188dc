using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// How many uploads and retrievals run at once (<c>TrustedProxy:Limits</c>). Each holds at most one
/// record in memory (retrievals stream instance by instance, read-ahead waits on disk beyond its
/// budget), so these bound the proxy's memory with the record limits: about (uploads + retrievals)
/// × the largest record held in memory. Past a client's share or the total, a request waits in a
/// short queue (waiting costs nothing); past the queue it gets 503 with Retry-After.
/// </summary>
public sealed record RequestLimitsOptions
{
    [Range(1, 10_000)]
    public int MaxConcurrentRetrievals { get; init; } = 16;

    /// <summary>Retrievals of one client certificate at once: a PACS pulling a study with many connections leaves room for the others.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentRetrievalsPerClient { get; init; } = 8;

    [Range(1, 10_000)]
    public int MaxConcurrentUploads { get; init; } = 32;

    [Range(1, 10_000)]
    public int MaxConcurrentUploadsPerClient { get; init; } = 16;

    /// <summary>Requests that wait for room, per client and in all, before the next is refused.</summary>
    [Range(0, 100_000)]
    public int QueueLimit { get; init; } = 64;

    /// <summary>What the 503 tells a client to wait, in seconds.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; init; } = 5;
}

/// <summary>Composes the request limits: ASP.NET Core's rate limiter, partitioned by what the endpoint does and by client.</summary>
internal static class RequestLimits
{
    public static IServiceCollection AddRequestLimits(this IServiceCollection services, RequestLimitsOptions options)
    {
        services.AddRateLimiter(limiter =>
        {
            // Per client first, then in all: a request holds a place in both while it runs.
            limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PartitionedRateLimiter.Create<HttpContext, string>(context => Kind(context) switch
                {
                    ProxyAction.Retrieve or ProxyAction.Export => Concurrency($"retrieve:{Client(context)}", options.MaxConcurrentRetrievalsPerClient, options.QueueLimit),
                    ProxyAction.Upload => Concurrency($"upload:{Client(context)}", options.MaxConcurrentUploadsPerClient, options.QueueLimit),
                    _ => RateLimitPartition.GetNoLimiter(string.Empty),
                }),
                PartitionedRateLimiter.Create<HttpContext, string>(context => Kind(context) switch
                {
                    ProxyAction.Retrieve or ProxyAction.Export => Concurrency("retrieve", options.MaxConcurrentRetrievals, options.QueueLimit),
                    ProxyAction.Upload => Concurrency("upload", options.MaxConcurrentUploads, options.QueueLimit),
                    _ => RateLimitPartition.GetNoLimiter(string.Empty),
                }));
            limiter.OnRejected = (rejected, _) =>
            {
                var context = rejected.HttpContext;
                context.Response.Headers.RetryAfter = options.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                var what = Kind(context) == ProxyAction.Upload ? "uploads" : "retrievals";
                return new ValueTask(Problem.Write(context, ProblemTypes.Busy, $"too many {what} at once; try again in {options.RetryAfterSeconds} s"));
            };
        });
        return services;
    }

    private static RateLimitPartition<string> Concurrency(string key, int permits, int queue) =>
        RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions
        {
            PermitLimit = permits,
            QueueLimit = queue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });

    private static ProxyAction? Kind(HttpContext context) => context.GetEndpoint()?.Metadata.GetMetadata<ProxyActionMetadata>()?.Action;

    // The certificate's thumbprint (the TLS layer has checked it); a request without one is refused later anyway.
    private static string Client(HttpContext context) => context.Connection.ClientCertificate?.Thumbprint ?? "anonymous";
}
