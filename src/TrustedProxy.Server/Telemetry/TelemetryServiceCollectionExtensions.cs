using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Telemetry;

/// <summary>
/// The proxy's telemetry: its own meters (<c>TrustedProxy.*</c>: upload cache, backup, policy,
/// retrieval, records, audit), ASP.NET Core's and the runtime's, through OpenTelemetry; pushed over
/// OTLP when a collector is configured (with the logs and the traces), scraped in the Prometheus
/// format by administrators. Traces follow a request through the proxy (policy, DICOM, seal,
/// encryption, the record's opening) and stop there: the cloud clients' handlers propagate no
/// context, so the cloud never sees anything per request; and no span carries an identifier (the
/// request path is removed from ASP.NET Core's spans, which keep the route template) (docs/operations.md, "Telemetry").
/// </summary>
internal static class TelemetryServiceCollectionExtensions
{
    public const string ServiceName = "trustedproxy";

    public static IServiceCollection AddProxyTelemetry(this IServiceCollection services, ILoggingBuilder logging, TelemetryOptions options)
    {
        var telemetry = services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService(ServiceName));
        telemetry.WithMetrics(metrics =>
        {
            metrics.AddMeter("TrustedProxy.*");
            metrics.AddAspNetCoreInstrumentation();
            metrics.AddRuntimeInstrumentation();
            if (options.Prometheus)
            {
                metrics.AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = options.ScrapeCacheMilliseconds);
            }

            if (options.OtlpEndpoint is not null)
            {
                metrics.AddOtlpExporter((exporter, reader) =>
                {
                    Configure(exporter, options);
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = options.ExportIntervalSeconds * 1000;
                });
            }
        });

        if (options.OtlpEndpoint is not null)
        {
            telemetry.WithTracing(tracing =>
            {
                ConfigureTracing(tracing, options);
                tracing.AddOtlpExporter(exporter => Configure(exporter, options));
            });
            logging.AddOpenTelemetry(logs =>
            {
                logs.SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(ServiceName));
                logs.AddOtlpExporter(exporter => Configure(exporter, options));
            });
        }

        return services;
    }

    public static IEndpointRouteBuilder MapProxyMetrics(this IEndpointRouteBuilder app, TelemetryOptions options)
    {
        if (options.Prometheus)
        {
            // Administrators and monitoring only: the figures (waiting blocks, backup lag, slot use)
            // tell how close the real load is to the slot rate, which the constant-rate stream hides.
            app.MapPrometheusScrapingEndpoint(options.PrometheusPath).RequiresAction(ProxyAction.Maintain).WithTags("Telemetry");
        }

        return app;
    }

    /// <summary>
    /// What is traced: the proxy's own spans (<see cref="TrustedProxy.Telemetry.ProxyTracing"/>) and
    /// ASP.NET Core's server spans without the request's path and query (a DICOMweb or records path
    /// names UIDs or handles); a share of traces set by <see cref="TelemetryOptions.TraceSampleRatio"/>,
    /// following a caller's sampling decision when it sends one.
    /// </summary>
    public static TracerProviderBuilder ConfigureTracing(TracerProviderBuilder tracing, TelemetryOptions options) => tracing
        .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(ServiceName))
        .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
        .AddSource(TrustedProxy.Telemetry.ProxyTracing.SourceName)
        .AddAspNetCoreInstrumentation(aspNetCore =>
        {
            aspNetCore.RecordException = false;
            aspNetCore.EnrichWithHttpRequest = (activity, _) => Scrub(activity);
            aspNetCore.EnrichWithHttpResponse = (activity, _) => Scrub(activity);
        });

    // The raw target may name a UID (/dicomweb/studies/1.2.…) or a record's handle; the route template (http.route) stays.
    private static void Scrub(System.Diagnostics.Activity activity)
    {
        activity.SetTag("url.path", null);
        activity.SetTag("url.query", null);
        activity.SetTag("url.full", null);
    }

    private static void Configure(OtlpExporterOptions exporter, TelemetryOptions options)
    {
        exporter.Endpoint = new Uri(options.OtlpEndpoint!);
        exporter.Protocol = options.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
    }
}
