using Microsoft.Extensions.Options;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Server.UploadCache;

/// <summary>Whether configuration set the slot rate (true) or the server derived it from the declared write load, and whether the backup has a share of it.</summary>
internal sealed record SlotRateOrigin(bool Configured, bool Backup);

/// <summary>Runs the upload cache's release loop for the life of the server; says first what its writes cost a day.</summary>
internal sealed partial class UploadCacheService(UploadCacheEngine engine, IOptions<UploadCacheOptions> options, SlotRateOrigin origin, ILogger<UploadCacheService> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        LogWriteCost(logger, SlotRate.Cost(options.Value, origin.Configured, origin.Backup));
        return engine.RunAsync(stoppingToken);
    }

    // The read side says its cost in event 4204 (GroupReader).
    [LoggerMessage(EventId = 4007, Level = LogLevel.Information, Message = "Cloud writes: {Cost}")]
    private static partial void LogWriteCost(ILogger logger, string cost);
}
