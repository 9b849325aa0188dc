using TrustedProxy.CertificateAuthority;

namespace TrustedProxy.Server.CertificateAuthority;

/// <summary>
/// Signs a fresh CRL once a day while the CA key is on this machine, so the CRL in force is never
/// near its next-update time (7 days) and never expires under a proxy that runs for weeks without a
/// revocation: an expired CRL beyond its grace admits nobody. Without the key (an offline CA) the
/// administrator publishes; the start-up publish covers a restart.
/// </summary>
internal sealed partial class CrlRefreshService(CertificateAuthorityAccess authority, TimeProvider time, ILogger<CrlRefreshService> logger) : BackgroundService
{
    public static readonly TimeSpan Every = TimeSpan.FromDays(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!authority.Available)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Every, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                authority.Use(ca => ca.PublishCrl());
                LogRefreshed(logger);
            }
            catch (Exception ex) when (ex is IOException or CertificateAuthorityException or UnauthorizedAccessException)
            {
                LogRefreshFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(EventId = 1107, Level = LogLevel.Information, Message = "A fresh CRL was signed (daily refresh)")]
    private static partial void LogRefreshed(ILogger logger);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Error, Message = "The daily CRL refresh failed; it is tried again tomorrow, and the CRL in force expires 7 days after it was signed")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
