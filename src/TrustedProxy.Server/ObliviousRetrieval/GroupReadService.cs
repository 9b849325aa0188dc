using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Server.ObliviousRetrieval;

/// <summary>Runs the epoch read loop for the life of the server.</summary>
internal sealed class GroupReadService(GroupReader reader) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => reader.RunAsync(stoppingToken);
}
