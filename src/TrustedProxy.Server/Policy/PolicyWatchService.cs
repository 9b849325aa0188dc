using TrustedProxy.Policy;

namespace TrustedProxy.Server.Policy;

/// <summary>Watches the policy directory while the server runs (TrustedProxy:Policy:Watch), so that an edit takes effect without a restart.</summary>
internal sealed class PolicyWatchService(PolicyStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        store.StartWatching();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        store.StopWatching();
        return Task.CompletedTask;
    }
}
