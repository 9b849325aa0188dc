using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Server.Health;

/// <summary>
/// <c>/healthz/live</c>: the process answers. <c>/healthz</c>: ready, meaning the index answers,
/// the backend answers, the upload cache is not stuck, a valid CRL is in force and the local disk
/// has not run out of space under an upload (degraded while it lacks it). Members see
/// only the overall status; the checks, with the upload cache's figures, go to administrators
/// alone: waiting blocks, releases and dummies read in real time would let a member colluding
/// with the cloud tell its own blocks from the cover and undo the cache's mixing (docs/privacy.md).
/// Monitoring reads the same figures from the process's meters, not over the members' API.
/// The backup's lag (Degraded past its alarm threshold) counts for administrators only.
/// </summary>
internal static class HealthEndpoints
{
    private const string BackupCheck = "backup";

    public static IServiceCollection AddProxyHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<IndexHealthCheck>("index")
            .AddCheck<BackendHealthCheck>("backend")
            .AddCheck<UploadCacheHealthCheck>("upload-cache")
            .AddCheck<RevocationListHealthCheck>("crl")
            .AddCheck<LocalDiskHealthCheck>("local-disk")
            .AddCheck<TrustedProxy.Server.Audit.AuditWitnessHealthCheck>("audit-witness")
            .AddCheck<TrustedProxy.Server.Backup.BackupHealthCheck>(BackupCheck);
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
        if (context.Features.Get<ProxyRequestFeature>()?.Identity.Role != ProxyRole.Admin)
        {
            // The backup's lag is left out of what members see: it grows only when dummy slots are
            // scarce, so it would tell a member (and a cloud colluding with one) how close the real
            // load is to the slot rate, which the constant-rate stream hides. It is only ever
            // Healthy or Degraded, both 200, so the status code says nothing of it either.
            var status = report.Entries.Where(e => e.Key != BackupCheck).Select(e => e.Value.Status).DefaultIfEmpty(HealthStatus.Healthy).Min();
            return JsonSerializer.SerializeAsync(context.Response.Body, new { status = status.ToString() });
        }

        return JsonSerializer.SerializeAsync(context.Response.Body, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status.ToString(),
                description = e.Value.Description,
                data = e.Value.Data.Count == 0 ? null : e.Value.Data,
            }),
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

    /// <summary>
    /// With the upload cache on, the backend's health is what the release loop last saw: a probe of
    /// our own would be a request at a time an administrator chose, outside the schedule, of a shape
    /// nothing else has (a HEAD). Write-through has no schedule to keep, so it probes.
    /// </summary>
    private sealed class BackendHealthCheck(IObjectStore store, UploadCacheEngine cache) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            if (cache.Enabled)
            {
                var s = cache.Snapshot();
                return s.BackingOffUntil is not null ? HealthCheckResult.Unhealthy($"{store.Name} backend does not answer the release loop")
                    : s.LastRefusal is { } refusal && s.Alarm ? HealthCheckResult.Degraded($"{store.Name} backend refuses writes: {refusal.Status} {refusal.Code}")
                    : HealthCheckResult.Healthy(s.LastWriteAt is { } at ? $"{store.Name} backend accepted a write at {at:O}" : $"{store.Name} backend: no write since start yet");
            }

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

    private sealed class UploadCacheHealthCheck(UploadCacheEngine cache) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var s = cache.Snapshot();
            var data = new Dictionary<string, object>
            {
                ["enabled"] = cache.Enabled,
                ["waitingBlocks"] = s.WaitingBlocks,
                ["oldestAgeSeconds"] = Math.Round(s.OldestAge.TotalSeconds, 1),
                ["releasedBlocks"] = s.ReleasedBlocks,
                ["dummyBlocks"] = s.DummyBlocks,
                ["deletedBlocks"] = s.DeletedBlocks,
                ["backendErrors"] = s.BackendErrors,
                ["refusedWrites"] = s.RefusedWrites,
                ["quarantinedBlocks"] = s.QuarantinedBlocks,
            };
            if (s.LastRefusal is { } refusal)
            {
                data["lastRefusal"] = new Dictionary<string, object> { ["status"] = refusal.Status, ["code"] = refusal.Code, ["kind"] = refusal.Kind, ["at"] = refusal.At.ToString("O") };
            }
            if (s.BackingOffUntil is { } until)
            {
                data["backingOffUntil"] = until.ToString("O");
            }

            var description = $"{s.WaitingBlocks} block(s) waiting, oldest {s.OldestAge.TotalSeconds:F0} s";
            return Task.FromResult(
                s.Alarm && s.LastRefusal is { } refused && s.OldestAge.TotalSeconds <= cache.AlarmAfterSeconds
                    ? HealthCheckResult.Unhealthy($"the backend refuses writes ({refused.Status} {refused.Code}): {s.RefusedWrites} refused, {s.QuarantinedBlocks} block(s) in quarantine; {description}", data: data)
                : s.Alarm ? HealthCheckResult.Unhealthy($"stuck: {description}, past the alarm threshold", data: data)
                : s.BackingOffUntil is not null ? HealthCheckResult.Degraded($"backend failing, retrying: {description}", data: data)
                : HealthCheckResult.Healthy(description, data: data));
        }
    }

    /// <summary>
    /// Degraded, not unhealthy: reads, searches and uploads that fit still work while the disk is
    /// too full for the upload that was refused (507).
    /// </summary>
    private sealed class LocalDiskHealthCheck(LocalStorageSpace space) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var free = space.FreeBytes;
            var data = new Dictionary<string, object> { ["freeBytes"] = free };
            return Task.FromResult(space.Current() is { } shortage
                ? HealthCheckResult.Degraded($"local disk full since {shortage.Since:O}: uploads are refused (507) until space is freed; {free} bytes free", data: data)
                : HealthCheckResult.Healthy($"{free} bytes free", data: data));
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
