using Microsoft.Extensions.Hosting;
using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Server.ObliviousRetrieval;

/// <summary>Runs the relocation queue's loop for the server's lifetime.</summary>
internal sealed class RelocationService(RelocationQueue queue) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => queue.RunAsync(stoppingToken);
}
