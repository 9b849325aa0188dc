using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using TrustedProxy.Server.Hosting;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.UploadCache;

/// <summary>
/// The slot rate, and so what the cloud is written a day, follows the write load the site declared
/// (config/declared-load.json), unless configuration sets it; the server says the daily cost at start-up.
/// </summary>
public sealed class SlotRateTests
{
    private const int WriteCostEvent = 4007;

    private const int BackupOnEvent = 9011;
    private const int BackupOffEvent = 9012;

    /// <summary>The cache on with the product's schedule and backup (no test shortcuts), and the start-up lines at Information.</summary>
    private static Dictionary<string, string?> CacheOn => new()
    {
        ["TrustedProxy:UploadCache:Enabled"] = "true",
        ["TrustedProxy:Backup:Enabled"] = null,
        ["Logging:LogLevel:TrustedProxy.Server.UploadCache"] = "Information",
        ["Logging:LogLevel:TrustedProxy.Server.Backup"] = "Information",
    };

    [Fact]
    public async Task WithNothingDeclared_TheEmbeddedDefaultWritesAFewGigabytesADay_AndSaysSo()
    {
        using var logs = new FakeLoggerProvider();
        await using var proxy = await ProxyHost.StartAsync(settings: CacheOn, logs: logs);

        var options = proxy.Services.GetRequiredService<IOptions<UploadCacheOptions>>().Value;
        var perDay = SlotRate.GigabytesPerDay(options.SlotsPerSecond, options.BlockSizeBytes);

        // Not the 4 slots/s (45 GB a day) the record's default would write whatever the load: four
        // times the declared bytes, one of them for the backup, which is on by default with the cache.
        Assert.Equal(SlotRate.Derive(10, 50, options.BlockSizeBytes, backup: true), options.SlotsPerSecond);
        Assert.InRange(perDay, 0.5, 3);
        var said = await LoggedAsync(logs, WriteCostEvent);
        Assert.Contains("2 GB a day written to the cloud and kept", said.Message, StringComparison.Ordinal);
        Assert.Contains("from the declared 10 uploads of 50 MB a day, 0.5 GB, times 4 (3 for the uploads and their cover, 1 for the backup)", said.Message, StringComparison.Ordinal);
        await LoggedAsync(logs, BackupOnEvent);
        Assert.True(proxy.Services.GetRequiredService<IOptions<TrustedProxy.Backup.BackupOptions>>().Value.Enabled);
    }

    [Fact]
    public async Task WithTheBackupSwitchedOff_TheRateIsThreeTimesTheDeclaration_AndWithoutTheCacheTheBackupIsOffAndSaysWhy_OrRefusedIfAskedFor()
    {
        using var logs = new FakeLoggerProvider();
        var off = new Dictionary<string, string?>(CacheOn) { ["TrustedProxy:Backup:Enabled"] = "false" };
        await using (var proxy = await ProxyHost.StartAsync(settings: off, logs: logs))
        {
            Assert.Equal(SlotRate.Derive(10, 50, new UploadCacheOptions().BlockSizeBytes, backup: false), proxy.Services.GetRequiredService<IOptions<UploadCacheOptions>>().Value.SlotsPerSecond);
            Assert.Contains("1.5 GB a day written to the cloud and kept", (await LoggedAsync(logs, WriteCostEvent)).Message, StringComparison.Ordinal);
            Assert.DoesNotContain(logs.Collector.GetSnapshot(), r => r.Id.Id is BackupOnEvent or BackupOffEvent);
        }

        // Write-through, the backup not mentioned: it cannot ride dummy slots there, so it is off and the log says so.
        using var writeThroughLogs = new FakeLoggerProvider();
        var writeThrough = new Dictionary<string, string?>(CacheOn) { ["TrustedProxy:UploadCache:Enabled"] = "false" };
        await using (var proxy = await ProxyHost.StartAsync(settings: writeThrough, logs: writeThroughLogs))
        {
            Assert.False(proxy.Services.GetRequiredService<IOptions<TrustedProxy.Backup.BackupOptions>>().Value.Enabled);
            var warned = await LoggedAsync(writeThroughLogs, BackupOffEvent);
            Assert.Contains("the upload cache (TrustedProxy:UploadCache:Enabled)", warned.Message, StringComparison.Ordinal);
        }

        // Asked for there, it is refused at start-up.
        var asked = new Dictionary<string, string?>(writeThrough) { ["TrustedProxy:Backup:Enabled"] = "true" };
        var refused = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyHost.StartAsync(settings: asked));
        Assert.Contains(refused.Errors, e => e.Contains("TrustedProxy:Backup:Enabled needs the upload cache", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheServerDerivesTheRateFromTheDeclaredWriteLoad_AndStatesItsDailyCost()
    {
        using var root = new TemporaryDirectory();
        DeclaredLoad.Write(root.Path, DeclaredLoad.Values.Defaults with { UploadsPerDay = 400, UploadMegabytes = 100 });
        using var logs = new FakeLoggerProvider();
        await using var proxy = await ProxyHost.StartAsync(settings: CacheOn, root: root.Path, logs: logs);

        var options = proxy.Services.GetRequiredService<IOptions<UploadCacheOptions>>().Value;

        // 40 GB a day declared, four times that in slots (three, and one for the backup): 14.1 slots/s, and k for a 2 h mean residence.
        Assert.Equal(4 * 40e9 / options.BlockSizeBytes / 86_400, options.SlotsPerSecond, 9);
        Assert.Equal((int)Math.Round(options.SlotsPerSecond * 7200), options.PoolThreshold);
        var said = await LoggedAsync(logs, WriteCostEvent);
        Assert.StartsWith("Cloud writes: 160 GB a day written to the cloud and kept, 58.4 TB a year, whatever the load: 14.129 writes/s of 128 KiB", said.Message, StringComparison.Ordinal);
        Assert.Contains("a block waits 120 min on average", said.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExplicitSlotsPerSecond_WinsOverTheDeclaration()
    {
        using var root = new TemporaryDirectory();
        DeclaredLoad.Write(root.Path, DeclaredLoad.Values.Defaults with { UploadsPerDay = 400, UploadMegabytes = 100 });
        using var logs = new FakeLoggerProvider();
        var settings = new Dictionary<string, string?>(CacheOn) { ["TrustedProxy:UploadCache:SlotsPerSecond"] = "0.25" };
        await using var proxy = await ProxyHost.StartAsync(settings: settings, root: root.Path, logs: logs);

        var options = proxy.Services.GetRequiredService<IOptions<UploadCacheOptions>>().Value;

        Assert.Equal(0.25, options.SlotsPerSecond);
        Assert.Equal(new UploadCacheOptions().PoolThreshold, options.PoolThreshold);
        var said = await LoggedAsync(logs, WriteCostEvent);
        Assert.Contains("2.83 GB a day written to the cloud and kept", said.Message, StringComparison.Ordinal);
        Assert.Contains("set by TrustedProxy:UploadCache:SlotsPerSecond", said.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADeclarationTooLargeForAnySlotRate_StopsTheStart_NamingIt()
    {
        using var root = new TemporaryDirectory();
        DeclaredLoad.Write(root.Path, DeclaredLoad.Values.Defaults with { UploadsPerDay = 10_000_000, UploadMegabytes = 1_000_000 });

        var refused = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyHost.StartAsync(settings: CacheOn, root: root.Path));

        Assert.Contains(refused.Errors, e => e.Contains("DeclaredUploadsPerDay", StringComparison.Ordinal) && e.Contains("100,000 slots/s", StringComparison.Ordinal));
    }

    // Hosted services say their start-up lines on their own threads (.NET 10 runs ExecuteAsync off
    // the start-up path): wait for the line, then take the only one.
    private static async Task<FakeLogRecord> LoggedAsync(FakeLoggerProvider logs, int eventId)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(30);
        while (!logs.Collector.GetSnapshot().Any(r => r.Id.Id == eventId) && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        return Assert.Single(logs.Collector.GetSnapshot(), r => r.Id.Id == eventId);
    }
}
