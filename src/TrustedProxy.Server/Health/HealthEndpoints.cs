using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Storage;

namespace TrustedProxy.Server.Health;

/// <summary>
/// <c>/healthz/live</c>: the process answers. <c>/healthz</c>: ready, meaning the index answers,
/// the backend answers and a valid CRL is in force.
/// </summary>
internal static class HealthEndpoints
{
    public static IServiceCollection AddProxyHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<IndexHealthCheck>("index")
            .AddCheck<BackendHealthCheck>("backend")
            .AddCheck<RevocationListHealthCheck>("crl");
        return services;
    }

    public static IEndpointRouteBuilder MapProxyHealth(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions { ResponseWriter = WriteAsync })
            .RequiresAction(ProxyAction.Discover).WithTags("Health");
        app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync })
            .RequiresAction(ProxyAction.Discover).WithTags("Health");
        return app;
    }

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        });
    }

    private sealed class IndexHealthCheck(RecordIndex index) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var records = await index.CountAsync();
            return HealthCheckResult.Healthy($"{records} record(s) indexed");
        }
    }

    private sealed class BackendHealthCheck(IObjectStore store) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));

                // A random name: the probe tells the cloud nothing about any record.
                await store.ExistsAsync(ObjectName.NewRandom(), timeout.Token);
                return HealthCheckResult.Healthy($"{store.Name} backend answers");
            }
            catch (Exception ex) when (ex is BackendUnavailableException or OperationCanceledException)
            {
                return HealthCheckResult.Unhealthy($"{store.Name} backend does not answer");
            }
        }
    }

    private sealed class RevocationListHealthCheck(PublishedRevocationList crl) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(crl.CurrentDer is null
                ? HealthCheckResult.Unhealthy("no valid CRL: every client certificate is refused")
                : HealthCheckResult.Healthy("CRL in force"));
    }
}
