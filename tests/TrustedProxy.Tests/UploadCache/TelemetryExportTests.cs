using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

/// <summary>
/// The instruments an alert rule watches, read through OpenTelemetry as an exporter sees them (the
/// in-memory exporter, as OTLP and Prometheus get them): the stuck-backend alarm goes from 0 to 1 when
/// the oldest waiting block passes its threshold, and a failed audit append is counted.
/// </summary>
public sealed class TelemetryExportTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public async Task TheStuckBackendAlarm_IsZeroThenOne_AsTheOldestWaitingBlockPassesItsThreshold()
    {
        var exported = new List<Metric>();
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter("TrustedProxy.UploadCache").AddInMemoryExporter(exported).Build();
        var time = new FakeTimeProvider(Start);
        var options = new UploadCacheOptions { BlockSizeBytes = 4096, SlotsPerSecond = 0.0001, PoolThreshold = 1_000_000, MinHoldSeconds = 0, MeanHoldSeconds = 60, MaxHoldSeconds = 300, AlarmAfterSeconds = 600 };
        Assert.Empty(options.Validate());

        // The release loop is not run: the blocks wait, as behind a backend that accepts nothing.
        using var rig = await EngineRig.OpenAsync(_directory.Path, options, time);
        await rig.AdmitRecordAsync(3);

        time.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal(0, Gauge(provider, exported, "trustedproxy.upload_cache.alarm"));
        Assert.Equal(3, Gauge(provider, exported, "trustedproxy.upload_cache.waiting_blocks"));

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, Gauge(provider, exported, "trustedproxy.upload_cache.alarm"));
    }

    [Fact]
    public async Task AnAuditAppendThatCannotBeMadeDurable_IsCounted()
    {
        var exported = new List<Metric>();
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter("TrustedProxy.Audit").AddInMemoryExporter(exported).Build();
        using var keys = ProxyKeyRing.FromBytes(new byte[32]);
        var audit = AuditLog.Open(Path.Combine(_directory.Path, "audit"), keys, new AuditLogOptions(), TimeProvider.System, new FixedAuditContext(new AuditContext(AuditActor.Operator("tester"))));
        await audit.AppendAsync(AuditEvents.KeySplit("i", "s", 3, 5));
        await audit.DisposeAsync();

        await Assert.ThrowsAsync<AuditUnavailableException>(() => audit.AppendAsync(AuditEvents.KeySplit("i", "t", 3, 5)));

        provider.ForceFlush();
        var failures = exported.Where(m => m.Name == "trustedproxy.audit.failures").SelectMany(Points).Sum(p => p.GetSumLong());
        Assert.True(failures >= 1, $"{failures} failures exported");
    }

    // The newest exported value of a gauge (one series).
    private static long Gauge(MeterProvider provider, List<Metric> exported, string name)
    {
        exported.Clear();
        provider.ForceFlush();
        var points = exported.Where(m => m.Name == name).SelectMany(Points).ToList();
        Assert.Single(points);
        return points[0].GetGaugeLastValueLong();
    }

    private static IEnumerable<MetricPoint> Points(Metric metric)
    {
        var points = new List<MetricPoint>();
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            points.Add(point);
        }

        return points;
    }

    public void Dispose() => _directory.Dispose();
}
