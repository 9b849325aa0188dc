using Microsoft.Extensions.Options;
using TrustedProxy.Audit;

namespace TrustedProxy.Server.Audit;

/// <summary>
/// Signs a checkpoint over the audit log every <see cref="AuditLogOptions.CheckpointEverySeconds"/>
/// when entries have arrived since the last one (the log itself signs one every
/// <see cref="AuditLogOptions.CheckpointEveryEntries"/>), and a last one at shutdown, so that a
/// cleanly stopped proxy leaves no entry outside a signed checkpoint.
/// </summary>
internal sealed partial class AuditCheckpointService(AuditLog audit, IOptions<AuditLogOptions> options, TimeProvider time, ILogger<AuditCheckpointService> logger) : BackgroundService
{
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var repair in audit.Repairs)
        {
            LogTornEntrySetAside(logger, audit.Paths.Directory, repair);
        }

        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await CheckpointAsync();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.CheckpointEverySeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await CheckpointAsync();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task CheckpointAsync()
    {
        try
        {
            await audit.CheckpointAsync();
        }
        catch (AuditUnavailableException ex)
        {
            LogCheckpointFailed(logger, ex.Message);
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Error, Message = "Audit checkpoint could not be written: {Reason}")]
    private static partial void LogCheckpointFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "The audit log in {Directory} ended inside an entry (a crash during an append); the torn bytes were set aside in {File} and the repair recorded in the log")]
    private static partial void LogTornEntrySetAside(ILogger logger, string directory, string file);
}
