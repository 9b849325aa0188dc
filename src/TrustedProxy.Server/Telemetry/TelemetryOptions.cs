using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Server.Telemetry;

/// <summary>
/// What the proxy exports about itself (<c>TrustedProxy:Telemetry</c>). Metrics carry no patient
/// or record identifier: the proxy's instruments are counts, states and ages, ASP.NET Core's are
/// tagged by route template (never the path a caller sent) and status.
/// </summary>
public sealed record TelemetryOptions
{
    /// <summary>An OTLP collector to push metrics and logs to (for example <c>http://collector:4317</c>); none by default.</summary>
    public string? OtlpEndpoint { get; init; }

    /// <summary>The share of traces kept and exported (with <see cref="OtlpEndpoint"/>), 0 to 1; a caller's own sampling decision is followed.</summary>
    [Range(0.0, 1.0)]
    public double TraceSampleRatio { get; init; } = 1.0;

    /// <summary>OTLP over <c>grpc</c> (port 4317 by convention) or <c>http/protobuf</c> (4318).</summary>
    public string OtlpProtocol { get; init; } = "grpc";

    /// <summary>How often metrics are pushed over OTLP.</summary>
    [Range(1, 3600)]
    public int ExportIntervalSeconds { get; init; } = 15;

    /// <summary>Serve the Prometheus text format at <see cref="PrometheusPath"/>, to administrators only (the <c>maintain</c> action).</summary>
    public bool Prometheus { get; init; } = true;

    public string PrometheusPath { get; init; } = "/metrics";

    /// <summary>How long a scrape's response is served again to later scrapes (the exporter's default, 300 ms); 0 renders every scrape afresh.</summary>
    [Range(0, 60_000)]
    public int ScrapeCacheMilliseconds { get; init; } = 300;

    public IEnumerable<string> Validate()
    {
        if (OtlpEndpoint is { } endpoint && (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            yield return $"TrustedProxy:Telemetry:OtlpEndpoint '{endpoint}' is not an absolute http or https URL";
        }

        if (!(TraceSampleRatio is >= 0 and <= 1))
        {
            yield return $"TrustedProxy:Telemetry:TraceSampleRatio {TraceSampleRatio} must be between 0 and 1";
        }

        if (ScrapeCacheMilliseconds is < 0 or > 60_000)
        {
            yield return $"TrustedProxy:Telemetry:ScrapeCacheMilliseconds {ScrapeCacheMilliseconds} must be between 0 and 60000";
        }

        if (OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            yield return $"TrustedProxy:Telemetry:OtlpProtocol '{OtlpProtocol}': choose grpc or http/protobuf";
        }

        if (!PrometheusPath.StartsWith('/') || PrometheusPath.Contains('{', StringComparison.Ordinal))
        {
            yield return $"TrustedProxy:Telemetry:PrometheusPath '{PrometheusPath}' must be a literal path starting with /";
        }
    }
}
