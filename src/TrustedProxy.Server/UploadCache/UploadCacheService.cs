using TrustedProxy.UploadCache;

namespace TrustedProxy.Server.UploadCache;

/// <summary>Runs the upload cache's release loop for the life of the server.</summary>
internal sealed class UploadCacheService(UploadCacheEngine engine) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => engine.RunAsync(stoppingToken);
}
