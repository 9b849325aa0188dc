using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using TrustedProxy.Backup;

namespace TrustedProxy.Server.Backup;

/// <summary>
/// Stages a new backup generation whenever one is due (the previous complete, the interval passed),
/// and an increment on the newest complete generation whenever the state changed and the previous
/// increment is committed; the upload cache's release loop ships both in dummy slots. Staging reads local files only: nothing
/// here talks to the backend.
/// </summary>
internal sealed partial class BackupService(BackupShipper shipper, IOptions<BackupOptions> options, TimeProvider time, ILogger<BackupService> logger) : BackgroundService
{
    // Often enough that a generation starts soon after it is due and an upload is in an increment soon
    // after its 202; a generation never more often than the interval.
    private TimeSpan CheckEvery => TimeSpan.FromSeconds(Math.Min(Math.Min(15, options.Value.IntervalSeconds), options.Value.IncrementCheckSeconds));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!shipper.Enabled)
        {
            if (options.Value.OffBecause is { } reason)
            {
                LogOffBecause(logger, reason);
            }

            return;
        }

        LogOn(logger);

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await shipper.StageIfDueAsync(stoppingToken);
                await shipper.StageIncrementIfDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogStagingFailed(logger, ex);
            }

            try
            {
                await Task.Delay(CheckEvery, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 9011, Level = LogLevel.Information, Message = "Backup: on, in the upload cache's dummy slots (docs/backup-and-recovery.md); a recovery needs k of the master key's shares: deal them with 'tproxy keys split' if 'tproxy init' did not")]
    private static partial void LogOn(ILogger logger);

    [LoggerMessage(EventId = 9012, Level = LogLevel.Warning, Message = "Backup: off, an acknowledged upload does not survive the loss of this disk: it needs {Reason}")]
    private static partial void LogOffBecause(ILogger logger, string reason);

    [LoggerMessage(EventId = 9010, Level = LogLevel.Error, Message = "Backup: staging a generation or an increment failed; it is tried again")]
    private static partial void LogStagingFailed(ILogger logger, Exception exception);
}

/// <summary>The backup's lag for administrators (/healthz): degraded when the newest complete generation is older than the alarm threshold.</summary>
internal sealed class BackupHealthCheck(BackupShipper shipper, IOptions<BackupOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var s = shipper.Status();
        var data = new Dictionary<string, object>
        {
            ["enabled"] = s.Enabled,
            ["lagSeconds"] = Math.Round(s.LagSeconds, 1),
            ["objectsWaiting"] = s.ObjectsWaiting,
        };
        if (s.NewestComplete is { } newest)
        {
            data["newestCompleteGeneration"] = newest;
            data["backupPoint"] = s.BackupPoint!.Value.ToString("O");
        }

        if (s.LastIncrement is { } increment)
        {
            data["lastIncrement"] = increment;
        }

        if (s.Shipping is { } shipping)
        {
            data["shippingGeneration"] = shipping;
        }

        var description = !s.Enabled ? (options.Value.OffBecause is { } reason ? $"backup off: it needs {reason}" : "backup off (TrustedProxy:Backup:Enabled)")
            : s.NewestComplete is null ? $"no complete generation yet; {s.ObjectsWaiting} object(s) waiting for dummy slots"
            : $"newest complete generation {s.NewestComplete}{(s.LastIncrement is { } i ? $" and its increments to {i}" : "")}, backup point {s.BackupPoint:O}, {s.LagSeconds:F0} s behind; {s.ObjectsWaiting} object(s) waiting for dummy slots";
        return Task.FromResult(s.Alarm
            ? HealthCheckResult.Degraded($"behind, past the alarm threshold: {description}", data: data)
            : HealthCheckResult.Healthy(description, data: data));
    }
}
