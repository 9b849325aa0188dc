using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using TrustedProxy.Policy;
using TrustedProxy.Server.Telemetry;
using TrustedProxy.Telemetry;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// Traces on the real server, configured as the server configures them for OTLP, read through the
/// in-memory exporter: an upload is one span with its steps under it (DICOM read, the record-level
/// admission, seal, encryption), a fetch opens and reads the record, each policy decision is a span;
/// and no span, the server's own included, names the patient, a UID, the record's handle or the path
/// the client sent.
/// </summary>
public sealed class TracingTests
{
    private static readonly ActivitySource Client = new("TrustedProxy.FunctionalTests.Tracing");

    [Fact]
    public async Task AnUploadAndAFetch_AreTracedStepByStep_AndNoSpanCarriesAnIdentifier()
    {
        var spans = new List<Activity>();
        using var tracer = TelemetryServiceCollectionExtensions.ConfigureTracing(Sdk.CreateTracerProviderBuilder(), new TelemetryOptions())
            .AddSource(Client.Name)
            .AddInMemoryExporter(spans)
            .Build();
        await using var proxy = await ProxyHost.StartAsync();
        const string study = "1.2.826.0.1.3680043.10.4711.1", series = "1.2.826.0.1.3680043.10.4711.2";
        var file = new DicomFileBuilder().Patient("TRACE-PID-4711", "Tracewell^Ada").Study(study, series, "20261207", "CT").PixelData(40_000, seed: 5).Build();

        // The test's own root: the client sends its context, so the server's spans join this trace
        // (and other tests' spans, in the same process, stay out of it).
        ActivityTraceId trace;
        TrustedProxy.Client.UploadResult receipt;
        using (var root = Client.StartActivity("hospital"))
        {
            Assert.NotNull(root);
            trace = root.TraceId;
            receipt = await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file));
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(receipt.Handle, back);
            Assert.True(file.AsSpan().SequenceEqual(back.ToArray()));
        }

        tracer.ForceFlush();
        List<Activity> ours;
        lock (spans)
        {
            ours = spans.Where(s => s.TraceId == trace).ToList();
        }

        var upload = Assert.Single(ours, s => s.Source.Name == ProxyTracing.SourceName && s.DisplayName == "upload");
        Assert.Equal("stored", upload.GetTagItem(ProxyTracing.Outcome));
        Assert.Equal(file.Length, Convert.ToInt64(upload.GetTagItem(ProxyTracing.Bytes), System.Globalization.CultureInfo.InvariantCulture));
        foreach (var step in new[] { "dicom.read", "record.admit", "seal", "encrypt" })
        {
            Assert.Contains(ours, s => s.DisplayName == step && s.ParentSpanId == upload.SpanId);
        }

        Assert.Contains(ours, s => s.DisplayName == "policy.decide" && Equals(s.GetTagItem(ProxyTracing.Permitted), true));
        var open = Assert.Single(ours, s => s.DisplayName == "record.open");
        Assert.Contains(ours, s => s.DisplayName == "record.read" && s.ParentSpanId == open.SpanId && s.GetTagItem(ProxyTracing.RecordSource) is "cloud");

        // The server's spans: named by the route template, with the request's path taken out.
        var server = ours.Where(s => s.Source.Name == "Microsoft.AspNetCore").ToList();
        Assert.True(server.Count >= 2, $"{server.Count} server spans");
        Assert.All(server, s => Assert.NotNull(s.GetTagItem("http.route")));
        Assert.All(server, s => Assert.Null(s.GetTagItem("url.path")));

        string[] identifiers = ["TRACE-PID-4711", "Tracewell", receipt.Handle, receipt.SopInstanceUid!, study, series];
        foreach (var span in ours)
        {
            var said = string.Join(" ", new[] { span.DisplayName, span.OperationName, span.StatusDescription ?? "" }
                .Concat(span.TagObjects.Select(t => $"{t.Key}={t.Value}"))
                .Concat(span.Events.Select(e => e.Name)));
            foreach (var identifier in identifiers)
            {
                Assert.False(said.Contains(identifier, StringComparison.Ordinal), $"span {span.DisplayName} carries an identifier: {said}");
            }
        }
    }
}
