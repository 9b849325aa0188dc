namespace TrustedProxy.Server.Dashboard;

/// <summary>The dashboard's log lines shared by its pages (event ids 75xx).</summary>
internal static partial class DashboardLog
{
    [LoggerMessage(EventId = 7502, Level = LogLevel.Warning, Message = "Dashboard form refused: antiforgery token missing or invalid on {Route}")]
    public static partial void AntiforgeryRefused(ILogger logger, string route);
}
