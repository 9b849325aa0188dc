using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using TrustedProxy.Client;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Testing;
using TrustedProxy.Testing.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>
/// How long a consumer waits for a whole CT study through WADO-RS: the proxy on the S3 backend
/// (s3rver behind the verifying front) at its default read settings, against Orthanc serving the
/// same files over its own DICOMweb plugin, in one run. The study is generated to a temporary
/// directory one file at a time; both retrieves are streamed and every part is checked by SHA-256
/// against the files uploaded.
/// </summary>
/// <remarks>
/// The upload phase uses a fast upload-cache schedule (otherwise the default one would take days
/// to release a study this size), and then the proxy is restarted with the upload cache at its
/// defaults too; no key of TrustedProxy:ObliviousRetrieval is ever set (the test host's immediate
/// reads are removed), and the run refuses to time anything unless every record is Stored, every
/// real block released and nothing left in the staging area, so that the read comes from the cloud.
/// The fast upload packs the study's blocks into consecutive retrieval groups with few dummies,
/// the best case for the read: at the default release schedule they would be spread over groups
/// shared with other records and cover.
/// </remarks>
internal static class StudyRetrievalBenchmark
{
    private const string AcceptDicom = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
    private const int InstancesPerStow = 50;

    // Releases as fast as the single release loop and s3rver allow: a slot every millisecond, each
    // carrying a real block while any waits (pool threshold 1).
    private static readonly Dictionary<string, string?> FastRelease = new()
    {
        ["TrustedProxy:UploadCache:Enabled"] = "true",
        ["TrustedProxy:UploadCache:SlotsPerSecond"] = "1000",
        ["TrustedProxy:UploadCache:PoolThreshold"] = "1",
    };

    public static async Task<int> RunAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var instances = int.Parse(Value("--instances") ?? "2000", CultureInfo.InvariantCulture);
        var rows = int.Parse(Value("--rows") ?? "512", CultureInfo.InvariantCulture);
        var columns = int.Parse(Value("--cols") ?? "512", CultureInfo.InvariantCulture);
        var from = Value("--from") ?? "cloud";
        if (from is not ("cloud" or "cache"))
        {
            Console.Error.WriteLine("--from is cloud (the study released to s3rver, read obliviously) or cache (read while the upload cache still holds it)");
            return 2;
        }

        var command = $"dotnet run -c Release --project loadtests/TrustedProxy.LoadTests -- study --instances {instances} --rows {rows} --cols {columns} --from {from}";

        using var directory = new TemporaryDirectory();
        var watch = Stopwatch.StartNew();
        var study = Generate(Path.Combine(directory.Path, "study"), instances, rows, columns);
        Progress($"generated {instances} instances of {rows}×{columns} 16-bit, {Size(study.Bytes)}, in {watch.Elapsed.TotalSeconds:F0} s");

        var proxy = await RunProxyAsync(study, fromCache: from == "cache");
        var orthanc = await RunOrthancAsync(study);

        Console.WriteLine(from == "cache"
            ? $"# Whole-study WADO-RS retrieve: proxy (the study still in its upload cache, defaults) vs Orthanc's DICOMweb; {Environment.ProcessorCount} cores"
            : $"# Whole-study WADO-RS retrieve: proxy (S3 backend, s3rver behind the verifying front, default read settings) vs Orthanc's DICOMweb; {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine($"`{command}`");
        Console.WriteLine();
        Console.WriteLine("| instances | bytes | proxy | Orthanc | proxy/Orthanc | proxy peak memory | bit-exact |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {instances} | {study.Bytes:N0} ({Size(study.Bytes)}) | {proxy.Retrieval.Seconds:F1} s ({proxy.Retrieval.MebibytesPerSecond:F1} MiB/s) | {orthanc.Retrieval.Seconds:F2} s ({orthanc.Retrieval.MebibytesPerSecond:F0} MiB/s) | {proxy.Retrieval.Seconds / orthanc.Retrieval.Seconds:F1}× | {Size(proxy.Retrieval.Memory.PeakWorkingSet)} working set, {Size(proxy.Retrieval.Memory.PeakManaged)} managed | {(proxy.Retrieval.BitExact && orthanc.Retrieval.BitExact ? "yes" : "no")} |"));
        Console.WriteLine();
        Console.WriteLine("| detail | proxy | Orthanc |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| time to response headers | {proxy.Retrieval.FirstByteSeconds:F1} s | {orthanc.Retrieval.FirstByteSeconds:F2} s |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| whole study | {proxy.Retrieval.Seconds:F1} s | {orthanc.Retrieval.Seconds:F2} s |"));
        Console.WriteLine($"| parts bit-exact (SHA-256) | {proxy.Retrieval.Verdict} | {orthanc.Retrieval.Verdict} |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| CPU during the retrieve (user + kernel), server and client | {proxy.Retrieval.Cpu.TotalSeconds:F1} s (this process: proxy, TLS both ends, client) | {orthanc.Retrieval.Cpu.TotalSeconds:F1} s ({orthanc.Retrieval.Cpu.ServerSeconds:F1} s Orthanc, {orthanc.Retrieval.Cpu.ClientSeconds:F1} s client); proxy/Orthanc {proxy.Retrieval.Cpu.TotalSeconds / orthanc.Retrieval.Cpu.TotalSeconds:F1}× |"));
        Console.WriteLine($"| working set before → peak | {Size(proxy.Retrieval.Memory.BaselineWorkingSet)} → {Size(proxy.Retrieval.Memory.PeakWorkingSet)} (this process: proxy, client, verifying front) | {Size(orthanc.Retrieval.Memory.BaselineWorkingSet)} → {Size(orthanc.Retrieval.Memory.PeakWorkingSet)} (Orthanc) |");
        Console.WriteLine($"| managed heap before → peak | {Size(proxy.Retrieval.Memory.BaselineManaged)} → {Size(proxy.Retrieval.Memory.PeakManaged)} | — |");
        Console.WriteLine($"| cloud requests during the retrieve | {proxy.CloudGets} GET, {proxy.CloudPuts} PUT (the study is {proxy.RealBlocks} blocks in {proxy.Groups} retrieval groups) | — |");
        Console.WriteLine($"| records relocated by the read (back in the upload cache) | {proxy.Relocated} of {instances} | — |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| ingest (not timed for the comparison) | STOW-RS {proxy.UploadSeconds:F0} s, release to the cloud {proxy.ReleaseSeconds:F0} s | REST /instances {orthanc.IngestSeconds:F0} s |"));
        Console.WriteLine();
        Console.WriteLine($"Read settings in force (TrustedProxy:ObliviousRetrieval, none set): `{proxy.ReadSettings}`");
        return proxy.Retrieval.BitExact && orthanc.Retrieval.BitExact ? 0 : 1;
    }

    private static async Task<ProxyRun> RunProxyAsync(GeneratedStudy study, bool fromCache)
    {
        await using var front = await VerifyingS3Front.StartAsync();

        // A null removes the test host's immediate reads: the product's read schedule, from the start.
        // From the cache: the upload cache at its defaults holds every record for hours, so the read
        // is the proxy's own path (decrypt, verify, restore the seal), as Orthanc's is from its disk.
        var settings = new Dictionary<string, string?>(fromCache ? new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true" } : FastRelease) { ["TrustedProxy:ObliviousRetrieval:Schedule"] = null };
        await using var proxy = await ProxyHost.StartAsync(front.Settings(), settings);

        var watch = Stopwatch.StartNew();
        using (var producer = ClientFor(proxy, ProxyRole.Producer))
        {
            foreach (var batch in study.Instances.Chunk(InstancesPerStow))
            {
                await StoreAsync(producer, batch);
                Progress($"proxy: stored {batch[^1].Number} of {study.Instances.Count} ({watch.Elapsed.TotalSeconds:F0} s)");
            }
        }

        var uploadSeconds = watch.Elapsed.TotalSeconds;
        if (fromCache)
        {
            var cached = (await proxy.Services.GetRequiredService<RecordIndex>().InStateAsync(RecordState.Cached)).Count;
            if (cached != study.Instances.Count)
            {
                throw new InvalidOperationException($"{cached} of {study.Instances.Count} records are in the upload cache before the read");
            }

            using var reader = ClientFor(proxy, ProxyRole.Consumer);
            Progress("proxy: retrieving the study from its upload cache");
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            using var process = Process.GetCurrentProcess();
            using var sampler = MemorySampler.Start(process, sampleManagedHeap: true);
            var fromDisk = await RetrieveAsync(request => reader.SendAsync(request), $"dicomweb/studies/{study.StudyUid}", study, sampler);
            Progress(string.Create(CultureInfo.InvariantCulture, $"proxy: {fromDisk.Seconds:F1} s, {fromDisk.Verdict}"));
            return new ProxyRun(fromDisk, uploadSeconds, 0, 0, 0, front.Requests.Count(r => r.Method == "GET"), front.Requests.Count(r => r.Method == "PUT"), 0, "upload cache at its defaults: every record still cached");
        }

        watch.Restart();
        await WaitUntilReleasedAsync(proxy, study.Instances.Count);
        var releaseSeconds = watch.Elapsed.TotalSeconds;

        // A store much larger than the study, as a deployment's is: otherwise the request's size
        // class is capped by the objects there are, and the read is shorter than it would be.
        await WaitForStoreAsync(proxy, 4L * (await proxy.Services.GetRequiredService<BlockIndex>().InStateAsync(BlockState.Released, BlockKind.Real)).Count);

        // Restarted with the upload cache at its defaults as well, so that what runs beside the read
        // (dummy writes, a relocated record's hold) is what a deployment runs.
        await proxy.StopAsync();
        await proxy.StartAgainAsync(FastRelease.ToDictionary(s => s.Key, _ => (string?)null));
        var readSettings = CheckDefaults(proxy);
        var (realBlocks, groups) = await CheckAllInTheCloudAsync(proxy, study.Instances.Count);

        front.Clear();
        using var consumer = ClientFor(proxy, ProxyRole.Consumer);
        Progress($"proxy: retrieving the study ({realBlocks} blocks in the cloud) at the default read settings");
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var self = Process.GetCurrentProcess();
        using var memory = MemorySampler.Start(self, sampleManagedHeap: true);
        var retrieval = await RetrieveAsync(request => consumer.SendAsync(request), $"dicomweb/studies/{study.StudyUid}", study, memory);
        Progress(string.Create(CultureInfo.InvariantCulture, $"proxy: {retrieval.Seconds:F1} s, {retrieval.Verdict}"));
        var requests = front.Requests;
        var relocated = (await proxy.Services.GetRequiredService<RecordIndex>().InStateAsync(RecordState.Cached)).Count;
        return new ProxyRun(retrieval, uploadSeconds, releaseSeconds, realBlocks, groups, requests.Count(r => r.Method == "GET"), requests.Count(r => r.Method == "PUT"), relocated, readSettings);
    }

    private static async Task<OrthancRun> RunOrthancAsync(GeneratedStudy study)
    {
        await using var orthanc = await OrthancProcess.StartStandaloneAsync();
        var watch = Stopwatch.StartNew();
        foreach (var instance in study.Instances)
        {
            await orthanc.AddAsync(await File.ReadAllBytesAsync(instance.Path));
        }

        var ingestSeconds = watch.Elapsed.TotalSeconds;
        Progress($"Orthanc: stored {study.Instances.Count} instances over REST in {ingestSeconds:F0} s; retrieving the study over DICOMweb");
        using var http = new HttpClient { BaseAddress = orthanc.Http.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        using var process = Process.GetProcessById(orthanc.ProcessId);
        using var memory = MemorySampler.Start(process, sampleManagedHeap: false);
        var retrieval = await RetrieveAsync(request => http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead), $"dicom-web/studies/{study.StudyUid}", study, memory);
        Progress(string.Create(CultureInfo.InvariantCulture, $"Orthanc: {retrieval.Seconds:F2} s, {retrieval.Verdict}"));
        return new OrthancRun(retrieval, ingestSeconds);
    }

    // One series of CT slices, written one file at a time; only the digests stay in memory.
    private static GeneratedStudy Generate(string directory, int instances, int rows, int columns)
    {
        Directory.CreateDirectory(directory);
        var studyUid = "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
        var seriesUid = studyUid + ".1";
        var files = new List<StudyInstance>(instances);
        for (var i = 1; i <= instances; i++)
        {
            var file = new DicomFileBuilder($"{seriesUid}.{i}")
                .SopClass(DicomFileBuilder.CtImageStorageSopClass)
                .Patient("STUDYLOAD1", "Study^Load")
                .Study(studyUid, seriesUid, "20240102", "CT")
                .Text(0x0020, 0x0011, "IS", "1")
                .Text(0x0020, 0x0013, "IS", i.ToString(CultureInfo.InvariantCulture))
                .Text(0x0020, 0x0032, "DS", string.Create(CultureInfo.InvariantCulture, $"-250\\-250\\{i * 0.625:0.###}"))
                .Text(0x0028, 0x1052, "DS", "-1024")
                .Text(0x0028, 0x1053, "DS", "1")
                .Image(rows, columns, seed: i)
                .Build();
            var path = Path.Combine(directory, $"{i:D6}.dcm");
            File.WriteAllBytes(path, file);
            files.Add(new StudyInstance(i, path, file.Length, Convert.ToHexStringLower(SHA256.HashData(file))));
        }

        return new GeneratedStudy(studyUid, files);
    }

    private static TrustedProxyClient ClientFor(ProxyHost proxy, ProxyRole role) =>
        TrustedProxyClient.FromFiles(proxy.BaseAddress, proxy.CredentialPath(role), string.Empty, proxy.Certificates.CaCertificate, Timeout.InfiniteTimeSpan);

    private static async Task StoreAsync(TrustedProxyClient producer, IReadOnlyList<StudyInstance> batch)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "dicomweb/studies") { Content = new StowContent(batch) };
        using var response = await producer.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var stored = response.StatusCode == HttpStatusCode.OK && JsonDocument.Parse(text).RootElement.TryGetProperty("00081199", out var sequence)
            ? sequence.GetProperty("Value").GetArrayLength()
            : 0;
        if (stored != batch.Count)
        {
            throw new InvalidOperationException($"STOW-RS answered {(int)response.StatusCode} with {stored} of {batch.Count} instances stored: {text[..Math.Min(text.Length, 2000)]}");
        }
    }

    // The cloud holds at least this many objects (the fast schedule writes cover once the pool is empty).
    private static async Task WaitForStoreAsync(ProxyHost proxy, long objects)
    {
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var watch = Stopwatch.StartNew();
        while ((await blocks.LastGroupAsync()).Group + 1 < objects)
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(10))
            {
                throw new InvalidOperationException($"the cloud holds {(await blocks.LastGroupAsync()).Group + 1} objects after ten minutes, not {objects}");
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        Progress($"proxy: the cloud holds {(await blocks.LastGroupAsync()).Group + 1} objects ({watch.Elapsed.TotalSeconds:F0} s of cover writes)");
    }

    // Every real block released and every record Stored; polled through the engine and the index.
    private static async Task WaitUntilReleasedAsync(ProxyHost proxy, int instances)
    {
        var engine = proxy.Services.GetRequiredService<UploadCacheEngine>();
        var records = proxy.Services.GetRequiredService<RecordIndex>();
        var watch = Stopwatch.StartNew();
        var lastProgress = TimeSpan.Zero;
        while (true)
        {
            var snapshot = engine.Snapshot();
            var cached = (await records.InStateAsync(RecordState.Cached)).Count;
            if (snapshot.WaitingBlocks == 0 && cached == 0)
            {
                return;
            }

            if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(10))
            {
                lastProgress = watch.Elapsed;
                Progress($"proxy: {snapshot.WaitingBlocks} blocks of {cached} of {instances} records still waiting, {snapshot.ReleasedBlocks} released, {snapshot.DummyBlocks} dummies, {snapshot.BackendErrors} backend errors ({watch.Elapsed.TotalSeconds:F0} s)");
            }

            if (snapshot.Alarm || snapshot.QuarantinedBlocks > 0)
            {
                throw new InvalidOperationException($"the upload cache raised its alarm while releasing: {snapshot}");
            }

            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    // The read side exactly as a deployment without those sections has it; fails rather than time anything else.
    private static string CheckDefaults(ProxyHost proxy)
    {
        var configuration = proxy.Services.GetRequiredService<IConfiguration>();
        foreach (var section in new[] { "TrustedProxy:ObliviousRetrieval", "TrustedProxy:UploadCache" })
        {
            var set = configuration.GetSection(section).AsEnumerable(makePathsRelative: true).Where(kv => kv.Value is not null).Select(kv => $"{kv.Key}={kv.Value}").ToList();
            if (set.Count > 0)
            {
                throw new InvalidOperationException($"{section} is not at its defaults for the read: {string.Join(", ", set)}");
            }
        }

        return JsonSerializer.Serialize(proxy.Services.GetRequiredService<IOptions<ObliviousRetrievalOptions>>().Value);
    }

    // Nothing of the study may be readable locally: every record Stored, every real block released, no staged ciphertext.
    private static async Task<(int Blocks, int Groups)> CheckAllInTheCloudAsync(ProxyHost proxy, int instances)
    {
        var records = proxy.Services.GetRequiredService<RecordIndex>();
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var stored = (await records.InStateAsync(RecordState.Stored)).Count;
        var cached = (await records.InStateAsync(RecordState.Cached)).Count;
        var waiting = (await blocks.InStateAsync(BlockState.Cached, BlockKind.Real)).Count;
        var staging = Path.Combine(proxy.Root, "data", "staging");
        var staged = Directory.Exists(staging) ? Directory.GetFiles(staging, "*.tpx").Length : 0;
        if (stored != instances || cached != 0 || waiting != 0 || staged != 0)
        {
            throw new InvalidOperationException($"not everything is in the cloud before the read: {stored} of {instances} records stored, {cached} cached, {waiting} real blocks waiting, {staged} files staged");
        }

        var released = await blocks.InStateAsync(BlockState.Released, BlockKind.Real);
        return (released.Count, released.Select(b => b.GroupId).Distinct().Count());
    }

    /// <summary>
    /// GETs a study as multipart/related and streams it: each part hashed as it arrives, then the
    /// digests compared with the files' as sets (every instance once, nothing else). Timed from the
    /// request to the closing delimiter.
    /// </summary>
    private static async Task<Retrieval> RetrieveAsync(Func<HttpRequestMessage, Task<HttpResponseMessage>> send, string path, GeneratedStudy study, MemorySampler memory)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd(AcceptDicom);
        using var self = Process.GetCurrentProcess();
        var clientCpu = self.TotalProcessorTime;
        var serverCpu = memory.ProcessorTime();
        var watch = Stopwatch.StartNew();
        using var response = await send(request);
        var firstByte = watch.Elapsed;
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"GET {path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(response.Content.Headers.ContentType!.ToString()).Boundary).Value
            ?? throw new InvalidOperationException($"GET {path} answered {response.Content.Headers.ContentType} without a boundary");
        await using var body = await response.Content.ReadAsStreamAsync();
        var reader = new MultipartReader(boundary, body);
        var digests = new List<string>();
        long bytes = 0;
        var buffer = new byte[1 << 16];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        while (await reader.ReadNextSectionAsync() is { } section)
        {
            int read;
            while ((read = await section.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                bytes += read;
            }

            digests.Add(Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        var elapsed = watch.Elapsed;
        serverCpu = memory.ProcessorTime() - serverCpu;
        self.Refresh();
        clientCpu = self.TotalProcessorTime - clientCpu;
        var (peakWorkingSet, peakManaged) = await memory.StopAsync();
        var expected = study.Instances.Select(i => i.Sha256).Order(StringComparer.Ordinal).ToList();
        var received = digests.Order(StringComparer.Ordinal).ToList();
        var matching = received.Intersect(expected, StringComparer.Ordinal).Count();
        return new Retrieval(
            elapsed.TotalSeconds,
            firstByte.TotalSeconds,
            bytes,
            received.SequenceEqual(expected, StringComparer.Ordinal),
            $"{matching} of {expected.Count} instances bit-exact, {received.Count} parts received",
            memory.Baseline with { PeakWorkingSet = peakWorkingSet, PeakManaged = peakManaged },
            memory.ProcessId == Environment.ProcessId ? new CpuFigures(serverCpu.TotalSeconds, null) : new CpuFigures(serverCpu.TotalSeconds, clientCpu.TotalSeconds));
    }

    private static void Progress(string line) => Console.Error.WriteLine(line);

    private static string Size(long bytes) => bytes >= 10L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1 << 20):F0} MiB");

    private sealed record StudyInstance(int Number, string Path, long Length, string Sha256);

    private sealed record GeneratedStudy(string StudyUid, IReadOnlyList<StudyInstance> Instances)
    {
        public long Bytes { get; } = Instances.Sum(i => i.Length);
    }

    private sealed record MemoryFigures(long BaselineWorkingSet, long BaselineManaged, long PeakWorkingSet, long PeakManaged);

    /// <summary>CPU time (user + kernel) during the retrieve: the server's, and the client's when it runs in another process (null: the same one, counted in the server's).</summary>
    private sealed record CpuFigures(double ServerSeconds, double? ClientSeconds)
    {
        public double TotalSeconds => ServerSeconds + (ClientSeconds ?? 0);
    }

    private sealed record Retrieval(double Seconds, double FirstByteSeconds, long Bytes, bool BitExact, string Verdict, MemoryFigures Memory, CpuFigures Cpu)
    {
        public double MebibytesPerSecond => Bytes / (double)(1 << 20) / Seconds;
    }

    private sealed record ProxyRun(Retrieval Retrieval, double UploadSeconds, double ReleaseSeconds, int RealBlocks, int Groups, int CloudGets, int CloudPuts, int Relocated, string ReadSettings);

    private sealed record OrthancRun(Retrieval Retrieval, double IngestSeconds);

    /// <summary>A STOW-RS body streamed from the files, with its length known (no chunked encoding).</summary>
    private sealed class StowContent : HttpContent
    {
        private const string Boundary = "study-load-5b2e9c";
        private static readonly byte[] PartHeader = Encoding.ASCII.GetBytes($"--{Boundary}\r\nContent-Type: application/dicom\r\n\r\n");
        private static readonly byte[] PartEnd = "\r\n"u8.ToArray();
        private static readonly byte[] Closing = Encoding.ASCII.GetBytes($"--{Boundary}--\r\n");
        private readonly IReadOnlyList<StudyInstance> _instances;

        public StowContent(IReadOnlyList<StudyInstance> instances)
        {
            _instances = instances;
            Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse($"multipart/related; type=\"application/dicom\"; boundary={Boundary}");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            foreach (var instance in _instances)
            {
                await stream.WriteAsync(PartHeader);
                await using (var file = File.OpenRead(instance.Path))
                {
                    await file.CopyToAsync(stream);
                }

                await stream.WriteAsync(PartEnd);
            }

            await stream.WriteAsync(Closing);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _instances.Sum(i => PartHeader.Length + i.Length + PartEnd.Length) + Closing.Length;
            return true;
        }
    }

    /// <summary>Samples a process's working set (and, for this process, the managed heap) every 50 ms until stopped.</summary>
    private sealed class MemorySampler : IDisposable
    {
        private readonly Process _process;
        private readonly bool _managed;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<(long WorkingSet, long Managed)> _loop;

        private MemorySampler(Process process, bool managed)
        {
            _process = process;
            _managed = managed;
            Baseline = new MemoryFigures(WorkingSet(), managed ? GC.GetTotalMemory(forceFullCollection: false) : 0, 0, 0);
            _loop = Task.Run(SampleAsync);
        }

        public MemoryFigures Baseline { get; }

        public static MemorySampler Start(Process process, bool sampleManagedHeap) => new(process, sampleManagedHeap);

        public int ProcessId => _process.Id;

        public TimeSpan ProcessorTime()
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }

        public async Task<(long PeakWorkingSet, long PeakManaged)> StopAsync()
        {
            await _stop.CancelAsync();
            return await _loop;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }

        private async Task<(long, long)> SampleAsync()
        {
            long peakWorkingSet = 0, peakManaged = 0;
            while (true)
            {
                peakWorkingSet = Math.Max(peakWorkingSet, WorkingSet());
                peakManaged = _managed ? Math.Max(peakManaged, GC.GetTotalMemory(forceFullCollection: false)) : 0;
                try
                {
                    await Task.Delay(50, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return (peakWorkingSet, peakManaged);
                }
            }
        }

        private long WorkingSet()
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }
}
