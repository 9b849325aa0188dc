using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.Testing;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>
/// The upload cache's costs, measured on real in-process proxies over mutual TLS (filesystem backend):
/// ingest with the cache on and off in the same run, the durability (fsync) cost per upload, and
/// memory with a large backlog waiting.
/// </summary>
internal static class UploadCacheBenchmark
{
    public static async Task<int> RunIngestAsync(int uploads, int concurrency, int size)
    {
        Console.WriteLine($"# ingest, {uploads} uploads of {size / 1024} KiB, {concurrency} concurrent producers, {Environment.ProcessorCount} cores, filesystem backend");
        Console.WriteLine();
        Console.WriteLine("| configuration | uploads/s | MB/s | upload p50 | upload p99 |");
        Console.WriteLine("|---|---|---|---|---|");
        var file = new DicomFileBuilder().Patient("INGEST1", "Ingest^Test").PixelData(Math.Max(0, size - 400), seed: 1).Build();
        foreach (var (name, settings) in new[]
        {
            ("write-through (cache off)", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "false" }),
            ("upload cache on (defaults)", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true" }),
            ("write-through (cache off), again", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "false" }),
            ("upload cache on (defaults), again", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true" }),
        })
        {
            var (seconds, latencies) = await MeasureIngestAsync(settings, file, uploads, concurrency, warmUp: 10);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {uploads / seconds:F0} | {uploads * (double)file.Length / (1 << 20) / seconds:F0} | {Percentile(latencies, 50):F1} ms | {Percentile(latencies, 99):F1} ms |"));
        }

        return 0;
    }

    /// <summary>
    /// The share of ingest the seal costs: uploads of CT-like images with sealing on (the default)
    /// and off (the in-memory limit below the file size, so it streams through unsealed), same run.
    /// </summary>
    public static async Task<int> RunWatermarkIngestAsync(int uploads, int concurrency)
    {
        Console.WriteLine($"# ingest with and without the seal, {uploads} uploads per row, {concurrency} concurrent producers, {Environment.ProcessorCount} cores, filesystem backend, upload cache on");
        Console.WriteLine();
        Console.WriteLine("| image | seal | uploads/s | upload p50 | upload p99 |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (label, rows) in new[] { ("512×512 16-bit", 512), ("2048×2048 16-bit", 2048) })
        {
            var file = new DicomFileBuilder().Patient("WMINGEST", "Ingest^Seal").Image(rows, rows, seed: 3).Build();
            var count = rows > 1024 ? Math.Max(20, uploads / 10) : uploads;
            foreach (var (seal, settings) in new[]
            {
                ("whole-file (streams)", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true", ["TrustedProxy:Watermarking:MaxInMemoryBytes"] = "1024" }),
                ("in the pixels", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true" }),
                ("whole-file, again", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true", ["TrustedProxy:Watermarking:MaxInMemoryBytes"] = "1024" }),
                ("in the pixels, again", new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true" }),
            })
            {
                var (seconds, latencies) = await MeasureIngestAsync(settings, file, count, concurrency, warmUp: 5);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {label} | {seal} | {count / seconds:F1} | {Percentile(latencies, 50):F1} ms | {Percentile(latencies, 99):F1} ms |"));
            }
        }

        return 0;
    }

    // A fresh proxy with these settings; uploads of one file by several producers at once, after a warm-up.
    private static async Task<(double Seconds, List<double> LatenciesMs)> MeasureIngestAsync(Dictionary<string, string?> settings, byte[] file, int uploads, int concurrency, int warmUp)
    {
        await using var proxy = await ProxyHost.StartAsync(settings: settings);
        var producer = proxy.Client(ProxyRole.Producer);
        for (var i = 0; i < warmUp; i++)
        {
            await producer.UploadAsync(new MemoryStream(file, writable: false));
        }

        var latencies = new List<double>();
        var next = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= uploads)
            {
                var one = Stopwatch.StartNew();
                await producer.UploadAsync(new MemoryStream(file, writable: false));
                lock (latencies)
                {
                    latencies.Add(one.Elapsed.TotalMilliseconds);
                }
            }
        }));
        return (watch.Elapsed.TotalSeconds, latencies);
    }

    public static async Task<int> RunDurabilityAsync(int iterations, int size)
    {
        using var directory = new TemporaryDirectory();
        var staging = new StagingArea(Path.Combine(directory.Path, "staging"));
        var index = new RecordIndex(Path.Combine(directory.Path, "proxy.db"));
        var content = new byte[size];
        Random.Shared.NextBytes(content);
        var write = new List<double>();
        var persist = new List<double>();
        var insert = new List<double>();
        for (var i = 0; i < iterations; i++)
        {
            var handle = RecordHandle.New();
            var watch = Stopwatch.StartNew();
            await using (var file = staging.Create(handle))
            {
                await file.WriteAsync(content);
                await file.FlushAsync();
                write.Add(watch.Elapsed.TotalMilliseconds);
                watch.Restart();
                staging.Persist(file);
                persist.Add(watch.Elapsed.TotalMilliseconds);
            }

            var now = DateTimeOffset.UtcNow;
            var blocks = Enumerable.Range(0, 4).Select(b => new CacheBlock
            {
                ObjectName = ObjectName.NewRandom(), Handle = handle, BlockIndex = b, Length = size / 4, Kind = BlockKind.Real,
                State = BlockState.Cached, AdmittedAt = now, DueAt = now.AddHours(1),
            }).ToList();
            watch.Restart();
            await index.InsertAsync(SampleEntry(handle, size), blocks);
            insert.Add(watch.Elapsed.TotalMilliseconds);
            staging.Delete(handle);
        }

        Console.WriteLine($"# durability per upload, {iterations} uploads of {size / 1024} KiB, {Environment.ProcessorCount} cores, {directory.Path[..Math.Min(5, directory.Path.Length)]}… on the machine's disk");
        Console.WriteLine();
        Console.WriteLine("| step | p50 | p99 |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| write the cache file (page cache) | {Percentile(write, 50):F2} ms | {Percentile(write, 99):F2} ms |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| fsync file + directory | {Percentile(persist, 50):F2} ms | {Percentile(persist, 99):F2} ms |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| index transaction (record + 4 blocks, synchronous=FULL) | {Percentile(insert, 50):F2} ms | {Percentile(insert, 99):F2} ms |"));
        return 0;
    }

    public static async Task<int> RunBacklogAsync(int records, int concurrency)
    {
        var held = new Dictionary<string, string?>
        {
            ["TrustedProxy:UploadCache:Enabled"] = "true",
            ["TrustedProxy:UploadCache:BlockSizeBytes"] = "4096",
            ["TrustedProxy:UploadCache:SlotsPerSecond"] = "0.0001",
            ["TrustedProxy:UploadCache:PoolThreshold"] = "100000000",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        await using var proxy = await ProxyHost.StartAsync(settings: held);
        var baseline = Measure();
        var producer = proxy.Client(ProxyRole.Producer);
        var file = new DicomFileBuilder().Patient("BACKLOG1", "Backlog^Test").PixelData(512, seed: 1).Build();
        var next = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= records)
            {
                await producer.UploadAsync(new MemoryStream(file, writable: false));
            }
        }));
        var ingest = watch.Elapsed;
        var engine = proxy.Services.GetRequiredService<UploadCacheEngine>();
        var loaded = Measure();
        var waiting = engine.Snapshot().WaitingBlocks;

        await proxy.StopAsync();
        watch.Restart();
        await proxy.StartAgainAsync();
        var recovery = watch.Elapsed;
        var recovered = Measure();
        var waitingAfter = proxy.Services.GetRequiredService<UploadCacheEngine>().Snapshot().WaitingBlocks;

        Console.WriteLine($"# backlog: {records} records ({file.Length} bytes each, one 4 KiB block) waiting in the upload cache; {Environment.ProcessorCount} cores; proxy and client in one process");
        Console.WriteLine();
        Console.WriteLine("| moment | blocks waiting | managed heap after GC | working set |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| empty proxy after start | 0 | {baseline.Heap} | {baseline.WorkingSet} |");
        Console.WriteLine($"| after {records} uploads ({ingest.TotalSeconds:F0} s) | {waiting} | {loaded.Heap} | {loaded.WorkingSet} |");
        Console.WriteLine($"| after a restart (recovery {recovery.TotalSeconds:F1} s) | {waitingAfter} | {recovered.Heap} | {recovered.WorkingSet} |");
        return 0;
    }

    private static (string Heap, string WorkingSet) Measure()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return ($"{GC.GetTotalMemory(forceFullCollection: true) / (1 << 20)} MiB", $"{self.WorkingSet64 / (1 << 20)} MiB");
    }

    private static RecordEntry SampleEntry(string handle, int size) => new()
    {
        Handle = handle,
        ObjectName = ObjectName.NewRandom(),
        WrappedKey = new byte[61],
        TransferSyntaxUid = "1.2.840.10008.1.2.1",
        PlaintextLength = size,
        StoredLength = size,
        ContentSha256 = new byte[32],
        OriginOrganisation = "Bench",
        State = RecordState.Cached,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private static double Percentile(List<double> values, double percentile)
    {
        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(percentile / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }
}
