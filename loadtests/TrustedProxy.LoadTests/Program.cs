using System.Diagnostics;
using System.Globalization;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Testing;

// Upload+fetch round trips of DICOM files of given sizes through a real proxy over mutual TLS.
// Without --server it starts its own proxy in this process on the filesystem backend (the embedded
// default), in a temporary directory.
//
//   dotnet run -c Release --project loadtests/TrustedProxy.LoadTests -- roundtrip --sizes 524288,67108864 --iterations 20
//   ... roundtrip --server https://proxy:8443 --producer p.p12 --consumer c.p12 --ca ca.crt.pem
//   ... privacy --hours 168 --seed 1     (the curious-cloud harness's report, no proxy needed)
//   ... retrieval --hours 96 --seed 1    (its request-side attacks on reads)
//   ... read-cost --days 28               (the epoch read schedule's daily cost at the documented load, and idle)
//   ... backup-rpo --hours 10 --load 1,3 --seed 1   (the backup's recovery point and cloud bytes/day, virtual time)
//   ... ingest --sizes 524288 --iterations 400     (upload cache on vs off, and the fsync cost)
//   ... ingest --folder DIR --connections 1,4 [--seconds 15 --rounds 2 --warmup 20 --fsyncs]
//                                                  (uploads/s of tproxy serve against Orthanc's REST /instances,
//                                                   the same files, one run; --ct 100 instead of --folder: 39 KB CT)
//   ... backlog --iterations 100000                (memory with that many records waiting)
//   ... padding                                    (padding overhead on pydicom's corpus)
//   ... ot --sizes 524288                          (oblivious-transfer cost per transfer)
//   ... policy --rules 1000 --iterations 1000000   (PDP decision latency p50/p99 with that many rules)
//   ... rewrap --records 100000 --batch-size 1000   (key-encryption-key rotation: data keys re-wrapped per second
//                                                  per core, against raw SQLite updates of the same rows)
//   ... study --instances 2000 --rows 512 --cols 512   (a whole CT study by WADO-RS from the S3 cloud at the
//                                                      default read settings, against Orthanc's DICOMweb on the same files)

var options = Options.Parse(args);
if (options.Scenario == "dicom")
{
    return await DicomThroughput.RunAsync(options.Iterations);
}

if (options.Scenario == "ingest" && (args.Contains("--folder") || args.Contains("--ct")))
{
    return await TrustedProxy.LoadTests.IngestAgainstOrthanc.RunAsync(args);
}

if (options.Scenario == "ingest")
{
    // Cache on vs off in one run, then the durability cost per upload.
    await TrustedProxy.LoadTests.UploadCacheBenchmark.RunIngestAsync(options.Iterations, concurrency: 4, size: options.Sizes[0]);
    Console.WriteLine();
    return await TrustedProxy.LoadTests.UploadCacheBenchmark.RunDurabilityAsync(200, options.Sizes[0]);
}

if (options.Scenario == "ot")
{
    TrustedProxy.LoadTests.ObliviousTransferBenchmark.Run(options.Sizes[0]);
    Console.WriteLine();
    return await TrustedProxy.LoadTests.ObliviousTransferBenchmark.RunEndToEndAsync(options.Sizes[0], options.Iterations);
}

if (options.Scenario == "policy")
{
    var rules = args.SkipWhile(a => a != "--rules").Skip(1).FirstOrDefault() is { } count ? int.Parse(count, CultureInfo.InvariantCulture) : 1000;
    return TrustedProxy.LoadTests.PolicyDecisionBenchmark.Run(rules, options.Iterations);
}

if (options.Scenario == "padding")
{
    return TrustedProxy.LoadTests.PaddingOverhead.Run();
}

if (options.Scenario == "backlog")
{
    return await TrustedProxy.LoadTests.UploadCacheBenchmark.RunBacklogAsync(options.Iterations, concurrency: 8);
}

if (options.Scenario == "privacy")
{
    return await PrivacyScenario.RunAsync(args);
}

if (options.Scenario == "watermark")
{
    return await TrustedProxy.LoadTests.UploadCacheBenchmark.RunWatermarkIngestAsync(options.Iterations, concurrency: 4);
}

if (options.Scenario == "read-cost")
{
    return TrustedProxy.LoadTests.ReadCostScenario.Run(args);
}

if (options.Scenario == "backup-rpo")
{
    return await TrustedProxy.LoadTests.BackupRpoScenario.RunAsync(args);
}

if (options.Scenario == "retrieval")
{
    return await PrivacyScenario.RunRetrievalAsync(args);
}

if (options.Scenario == "backup-recovery")
{
    return await TrustedProxy.LoadTests.BackupRecoveryBenchmark.RunAsync(args);
}

if (options.Scenario == "rewrap")
{
    return await TrustedProxy.LoadTests.RewrapBenchmark.RunAsync(args);
}

if (options.Scenario == "study")
{
    return await TrustedProxy.LoadTests.StudyRetrievalBenchmark.RunAsync(args);
}

if (options.Scenario != "roundtrip")
{
    Console.Error.WriteLine("usage: roundtrip [--sizes bytes,bytes] [--iterations n] [--server url --producer p12 --consumer p12 --ca pem]\n       dicom [--iterations rounds]\n       privacy [--hours simulated-hours] [--seed n]\n       watermark [--iterations uploads]\n       retrieval [--hours simulated-hours] [--seed n] [--pairs per-class]\n       ingest [--sizes bytes] [--iterations uploads]\n       ingest --folder dir|--ct files [--connections 1,4] [--seconds n] [--rounds n] [--warmup n] [--fsyncs]\n       backlog [--iterations records]\n       padding\n       ot [--sizes record-bytes]\n       policy [--rules n] [--iterations decisions]\n       study [--instances n] [--rows pixels] [--cols pixels] [--from cloud|cache]\n       read-cost [--days n] [--idle-days n] [--seed n]\n       backup-rpo [--hours n] [--load 1,3] [--seed n] [--block-kib n] [--start-hour h] [--slots n] [--interval s]\n       backup-recovery [--records n]\n       rewrap [--records n] [--batch-size n] [--metadata-bytes n]");
    return 2;
}

await using var local = options.Server is null ? await ProxyHost.StartAsync() : null;
using var producer = local?.Client(ProxyRole.Producer) ?? TrustedProxyClient.FromFiles(new Uri(options.Server!), options.Producer!, null, options.Ca!);
using var consumer = local?.Client(ProxyRole.Consumer) ?? TrustedProxyClient.FromFiles(new Uri(options.Server!), options.Consumer!, null, options.Ca!);

Console.WriteLine($"# round trips through {(local is null ? options.Server : "an in-process proxy, filesystem backend")}, {Environment.ProcessorCount} cores, {options.Iterations} iterations after 2 warm-up");
Console.WriteLine();
Console.WriteLine("| file | upload p50 | upload p99 | fetch p50 | fetch p99 | round trip MB/s (mean) |");
Console.WriteLine("|---|---|---|---|---|---|");
foreach (var size in options.Sizes)
{
    var file = new DicomFileBuilder().Patient("LOAD1", "Load^Test").PixelData(Math.Max(0, size - 400), seed: size).Build();
    var uploads = new List<double>();
    var fetches = new List<double>();
    for (var i = 0; i < options.Iterations + 2; i++)
    {
        var watch = Stopwatch.StartNew();
        var receipt = await producer.UploadAsync(new MemoryStream(file, writable: false));
        var uploaded = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        var length = await consumer.FetchAsync(receipt.Handle, Stream.Null);
        var fetched = watch.Elapsed.TotalMilliseconds;
        if (length != file.Length)
        {
            throw new InvalidOperationException($"fetched {length} bytes, uploaded {file.Length}");
        }

        if (i >= 2)
        {
            uploads.Add(uploaded);
            fetches.Add(fetched);
        }
    }

    var roundTrip = uploads.Zip(fetches, (u, f) => u + f).Average();
    var megabytesPerSecond = 2.0 * file.Length / (1024 * 1024) / (roundTrip / 1000);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {Size(file.Length)} | {Percentile(uploads, 50):F1} ms | {Percentile(uploads, 99):F1} ms | {Percentile(fetches, 50):F1} ms | {Percentile(fetches, 99):F1} ms | {megabytesPerSecond:F0} |"));
}

return 0;

static double Percentile(List<double> values, double percentile)
{
    var sorted = values.Order().ToList();
    var rank = (int)Math.Ceiling(percentile / 100 * sorted.Count) - 1;
    return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
}

static string Size(long bytes) => bytes >= 1 << 20 ? $"{bytes / (1 << 20)} MiB" : $"{bytes / 1024} KiB";

internal sealed record Options(string Scenario, IReadOnlyList<int> Sizes, int Iterations, string? Server, string? Producer, string? Consumer, string? Ca)
{
    public static Options Parse(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        return new Options(
            args.FirstOrDefault() ?? "roundtrip",
            (Value("--sizes") ?? "524288,67108864").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList(),
            int.Parse(Value("--iterations") ?? "20", CultureInfo.InvariantCulture),
            Value("--server"),
            Value("--producer"),
            Value("--consumer"),
            Value("--ca"));
    }
}
