using Microsoft.Extensions.Diagnostics.HealthChecks;
using TrustedProxy.Audit;

namespace TrustedProxy.Server.Audit;

/// <summary>
/// Runs the witness publisher for the server's life (TrustedProxy:Audit:Witness): every checkpoint
/// the log signs, or takes in from the command line, goes to each witness in the background. Its
/// stop does not wait for an unreachable witness: what is not pushed yet is pushed at the next
/// start, from the durable markers.
/// </summary>
internal sealed partial class AuditWitnessService(AuditWitnessPublisher publisher, AuditWitnessOptions options, ILogger<AuditWitnessService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Enabled)
        {
            LogNoWitness(logger);
        }

        publisher.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await publisher.DisposeAsync();

    [LoggerMessage(EventId = 5012, Level = LogLevel.Warning, Message = "No audit witness is configured (TrustedProxy:Audit:Witness:Directory or :Url): whoever holds the master key and the data directory could rewrite the audit log unnoticed; see docs/audit-log.md, \"Witness\"")]
    private static partial void LogNoWitness(ILogger logger);
}

/// <summary>
/// Degraded (still 200: the proxy serves) while a witness does not take checkpoints; administrators
/// see each witness's figures. Without a witness, healthy, saying so.
/// </summary>
internal sealed class AuditWitnessHealthCheck(AuditWitnessPublisher publisher, AuditWitnessOptions options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!options.Enabled)
        {
            return Task.FromResult(HealthCheckResult.Healthy("no audit witness configured"));
        }

        var statuses = publisher.Statuses;
        var data = statuses.ToDictionary(s => s.Name, s => (object)new
        {
            location = s.Location,
            witnessedSize = s.WitnessedSize,
            pending = s.Pending,
            consecutiveFailures = s.ConsecutiveFailures,
            lastError = s.LastError,
            lastSuccess = s.LastSuccess,
            nextAttempt = s.NextAttempt,
        });
        var failing = statuses.Where(s => s.Failing).ToList();
        return Task.FromResult(failing.Count > 0
            ? HealthCheckResult.Degraded($"audit witness unreachable, checkpoints queued and retried: {string.Join(", ", failing.Select(s => $"{s.Name} ({s.Pending} pending)"))}", data: data)
            : HealthCheckResult.Healthy($"audit witness holds the checkpoints: {string.Join(", ", statuses.Select(s => $"{s.Name} up to {s.WitnessedSize} entries"))}", data));
    }
}
