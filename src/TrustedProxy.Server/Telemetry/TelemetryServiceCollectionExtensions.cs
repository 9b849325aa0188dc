using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Telemetry;

/// <summary>
/// The proxy's telemetry: its own meters (<c>TrustedProxy.*</c>: upload cache, backup, policy,
/// retrieval, records, audit), ASP.NET Core's and the runtime's, through OpenTelemetry; pushed over
/// OTLP when a collector is configured (with the logs), scraped in the Prometheus format by
/// administrators. No tracing: a trace would follow a request into the cloud clients, and the cloud
/// must never see anything per request (docs/operations.md, "Telemetry").
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
                metrics.AddPrometheusExporter();
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

    private static void Configure(OtlpExporterOptions exporter, TelemetryOptions options)
    {
        exporter.Endpoint = new Uri(options.OtlpEndpoint!);
        exporter.Protocol = options.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
    }
}
