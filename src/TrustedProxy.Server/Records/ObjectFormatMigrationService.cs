using TrustedProxy.Records;

namespace TrustedProxy.Server.Records;

/// <summary>Runs the object-format migration's loop for the life of the server (idle until an administrator starts a run).</summary>
internal sealed class ObjectFormatMigrationService(ObjectFormatMigration migration) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => migration.RunAsync(stoppingToken);
}
