using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Storage;
using TrustedProxy.Testing.Storage;
using TrustedProxy.UploadCache;
using Xunit.Abstractions;

namespace TrustedProxy.FunctionalTests.UploadCache;

/// <summary>
/// Issue 20 end to end: a real proxy with the S3 backend behind the verifying front, the cache
/// releasing within seconds. What the cloud receives is judged from the front's record of every
/// request, as the honest-but-curious cloud itself would see it: every write one conditional PUT
/// of one shape whose body is what was signed, cover at the schedule's rate, objects with no
/// common prefix, no request context; and a store that refuses the cover neither holds up the
/// real blocks nor goes unnoticed.
/// </summary>
[Collection("s3rver")]
public sealed class CoverOnTheWireTests : IDisposable
{
    private const int BlockSize = 16 * 1024;
    private const double SlotsPerSecond = 40;
    private const string SourceName = "TrustedProxy.FunctionalTests.CoverOnTheWire";
    private static readonly ActivitySource Source = new(SourceName);

    // Every header .NET and the SDKs know for carrying a request's context from one hop to the next.
    private static readonly string[] ContextHeaders = ["traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context"];

    // What may differ between two writes of the same shape: the time, the signature, the body's
    // digests and the SDK's per-call ids. The key is in the path, not a header.
    private static readonly string[] PerRequestHeaders = ["x-amz-date", "authorization", "x-amz-content-sha256", "content-md5", "amz-sdk-invocation-id", "amz-sdk-request"];

    private readonly S3rverFixture _s3rver;
    private readonly ITestOutputHelper _output;

    public CoverOnTheWireTests(S3rverFixture s3rver, ITestOutputHelper output)
    {
        _s3rver = s3rver;
        _output = output;
        s3rver.BeginCleanTest();
        s3rver.Front.Refuse = null;
    }

    /// <summary>Small blocks, many slots, a short max hold: a few dozen files are out within seconds.</summary>
    private static Dictionary<string, string?> Fast => new(UploadCacheTests.Fast)
    {
        // The corpus's variants of one instance share a SOP Instance UID: each is a record of its own here.
        ["TrustedProxy:Records:DuplicateInstance"] = "keep-all",
        ["TrustedProxy:UploadCache:BlockSizeBytes"] = BlockSize.ToString(CultureInfo.InvariantCulture),
        ["TrustedProxy:UploadCache:SlotsPerSecond"] = SlotsPerSecond.ToString(CultureInfo.InvariantCulture),
        ["TrustedProxy:UploadCache:PoolThreshold"] = "10",
        ["TrustedProxy:UploadCache:MeanHoldSeconds"] = "1",
        ["TrustedProxy:UploadCache:MaxHoldSeconds"] = "3",
    };

    [Fact]
    public async Task BehindAVerifyingS3Front_EveryWriteIsOneSignedConditionalPutOfOneShape_CoverFlowsAtTheScheduledRate_AndRecordsComeBackBitExact()
    {
        var clock = Stopwatch.StartNew();
        var files = TestFiles();
        var backend = _s3rver.Backend();
        await using var proxy = await ProxyHost.StartAsync(backend, Fast);
        _output.WriteLine($"files read, proxy up at {clock.Elapsed.TotalSeconds:F1} s");

        var handles = new List<string>();
        foreach (var file in files)
        {
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
        }

        _output.WriteLine($"uploaded at {clock.Elapsed.TotalSeconds:F1} s");
        var real = await WaitUntilAllReleasedAsync(proxy, handles, TimeSpan.FromSeconds(20));
        var releasedAt = DateTimeOffset.UtcNow;
        _output.WriteLine($"all out at {clock.Elapsed.TotalSeconds:F1} s");

        // Cover goes on with nothing to release: a window of pure schedule.
        var window = TimeSpan.FromSeconds(3);
        await Task.Delay(window + TimeSpan.FromMilliseconds(200));
        var requests = InBucket(_s3rver.Front.Requests, backend);
        var puts = requests.Where(r => r.Method == "PUT" && r.Key.Length > 0).ToList();

        // The body every PUT carried is the body its signature covers, and the cloud refused nothing.
        Assert.True(puts.Count > real.Count, $"only {puts.Count} PUTs for {real.Count} real blocks: no cover went out");
        var mismatched = puts.Where(p => !string.Equals(p.BodySha256, p.Header("x-amz-content-sha256"), StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(mismatched.Count == 0, $"{mismatched.Count} PUT(s) whose body differs from its signed hash, e.g. {mismatched.FirstOrDefault()}");
        var refused = requests.Where(r => r.IsRefusal || r.Status == 0).ToList();
        Assert.True(refused.Count == 0, $"{refused.Count} request(s) refused, e.g. {refused.FirstOrDefault()}");
        Assert.All(puts, p => Assert.Equal(200, p.Status));

        // Every real block is out: nothing waits, the index has each released, the cloud holds each.
        var cache = (await HealthAsync(proxy)).GetProperty("upload-cache").GetProperty("data");
        Assert.Equal(0, cache.GetProperty("waitingBlocks").GetInt32());
        var putKeys = puts.Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
        var listed = (await proxy.CloudObjectsAsync()).Select(o => o.Name.ToString()).ToHashSet(StringComparer.Ordinal);
        foreach (var block in real)
        {
            Assert.Equal(BlockState.Released, (await proxy.Services.GetRequiredService<BlockIndex>().FindAsync(block.Id))!.State);
            Assert.True(putKeys.Contains(block.ObjectName.ToString()), $"no PUT of block {block.BlockIndex} of {block.Handle}");
            Assert.True(listed.Contains(block.ObjectName.ToString()), $"block {block.BlockIndex} of {block.Handle} is not in the bucket");
        }

        // Cover at about the schedule's rate once nothing real is left (Poisson: 120 ± 11 expected).
        // The bounds are wide for a loaded machine, where the loop lags and then catches up in a
        // burst; no cover, or a rate off by a factor of two, still fails.
        var inWindow = puts.Count(p => p.Time >= releasedAt && p.Time < releasedAt + window);
        var expected = SlotsPerSecond * window.TotalSeconds;
        _output.WriteLine($"{files.Count} files, {real.Count} real blocks, {puts.Count} PUTs, {inWindow} in {window.TotalSeconds} s of cover (schedule: {expected})");
        Assert.True(inWindow >= 0.4 * expected && inWindow <= 1.75 * expected, $"{inWindow} writes in {window.TotalSeconds} s of cover; the schedule says about {expected}");

        // Every object is one fixed-size block of uniform bytes: no 4-byte prefix recurs beyond chance.
        Assert.All(puts, p => Assert.Equal(BlockSize, p.BodyLength));
        var commonest = puts.GroupBy(p => Convert.ToHexString(p.BodyPrefix.AsSpan(0, 4))).Max(g => g.Count());
        Assert.True(commonest <= Math.Max(1, puts.Count / 100), $"a 4-byte prefix is shared by {commonest} of {puts.Count} objects");

        // One request shape: the same header names, and the same values but for the per-request ones.
        AssertOneShape(puts);
        Assert.All(puts, p => Assert.Equal("*", p.Header("If-None-Match")));
        Assert.Equal(puts.Count, putKeys.Count);
        var firstPut = requests.Select((r, i) => (r, i)).Where(x => x.r.Method == "PUT" && x.r.Key.Length > 0).GroupBy(x => x.r.Key).ToDictionary(g => g.Key, g => g.Min(x => x.i));
        var lookedAtFirst = requests.Select((r, i) => (r, i)).Where(x => x.r.Method is "HEAD" or "GET" && firstPut.TryGetValue(x.r.Key, out var put) && x.i < put).ToList();
        Assert.True(lookedAtFirst.Count == 0, $"{lookedAtFirst.Count} HEAD/GET of a key before its PUT, e.g. {lookedAtFirst.FirstOrDefault().r}");
        AssertNoRequestContext(requests);

        // And the records are intact.
        for (var i = 0; i < files.Count; i++)
        {
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[i], back);
            Assert.True(files[i].AsSpan().SequenceEqual(back.ToArray()), $"record {i} came back different");
        }

        _output.WriteLine($"read back at {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task WithAStoreThatRefusesEveryDummy_RealBlocksStillLeaveOnSchedule_TheRefusalsAreCountedAndAlarmed_AndReadsStayBitExact()
    {
        var backend = _s3rver.Backend();
        ProxyHost? running = null;

        // A misbehaving store that refuses every write but those of real blocks. Only to decide
        // that does the hook consult the proxy's own index (ground truth no cloud has); before the
        // proxy answers, nothing real exists yet.
        _s3rver.Front.Refuse = r => r.Method == "PUT" && r.Key.Length > 0 && !IsRealBlock(running, r.Key) ? (403, "AccessDenied") : null;
        await using var proxy = await ProxyHost.StartAsync(backend, Fast);
        running = proxy;
        var clock = Stopwatch.StartNew();
        var files = TestFiles();

        var handles = new List<string>();
        foreach (var file in files)
        {
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
        }

        var real = await WaitUntilAllReleasedAsync(proxy, handles, TimeSpan.FromSeconds(20));

        // Real blocks went out, each once and accepted, on the schedule while the cover around them
        // was refused: none waited much past the max hold (3 s; the margin is for a loaded machine,
        // a stream stalled by the refusals would hold them far longer).
        var puts = InBucket(_s3rver.Front.Requests, backend).Where(r => r.Method == "PUT" && r.Key.Length > 0).ToList();
        var realNames = real.Select(b => b.ObjectName.ToString()).ToHashSet(StringComparer.Ordinal);
        var longest = TimeSpan.Zero;
        foreach (var block in real)
        {
            var put = Assert.Single(puts, p => p.Key == block.ObjectName.ToString());
            Assert.Equal(200, put.Status);
            longest = put.Time - block.AdmittedAt > longest ? put.Time - block.AdmittedAt : longest;
        }

        _output.WriteLine($"{files.Count} files, {real.Count} real blocks; the longest wait was {longest.TotalSeconds:F2} s; all out at {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(longest < TimeSpan.FromSeconds(8), $"a real block waited {longest.TotalSeconds:F1} s for its release; the max hold is 3 s");
        Assert.Contains(puts, p => p.FrontError == "AccessDenied");
        Assert.All(puts.Where(p => p.FrontError == "AccessDenied"), p => Assert.DoesNotContain(p.Key, realNames));

        // Counted: the health view's figure is the front's, bracketed (at most one write is in flight,
        // refused at the front but not yet counted by the proxy).
        var before = RefusedAtTheFront(backend);
        var checks = await HealthAsync(proxy);
        var after = RefusedAtTheFront(backend);
        var cache = checks.GetProperty("upload-cache");
        var data = cache.GetProperty("data");
        var counted = data.GetProperty("refusedWrites").GetInt64();
        _output.WriteLine($"refused at the front {before}..{after}, counted {counted}");
        Assert.True(counted > 0 && counted >= before - 1 && counted <= after, $"the proxy counts {counted} refused writes; the front refused {before}..{after}");
        Assert.Equal(0, data.GetProperty("quarantinedBlocks").GetInt32());
        Assert.Equal(0, data.GetProperty("waitingBlocks").GetInt32());

        // Alarmed, in the store's own words.
        Assert.Equal("Unhealthy", cache.GetProperty("status").GetString());
        Assert.Contains("AccessDenied", cache.GetProperty("description").GetString(), StringComparison.Ordinal);
        var refusal = data.GetProperty("lastRefusal");
        Assert.Equal(403, refusal.GetProperty("status").GetInt32());
        Assert.Equal("AccessDenied", refusal.GetProperty("code").GetString());
        Assert.Equal("dummy", refusal.GetProperty("kind").GetString());
        var store = checks.GetProperty("backend");
        Assert.Equal("Degraded", store.GetProperty("status").GetString());
        Assert.Contains("AccessDenied", store.GetProperty("description").GetString(), StringComparison.Ordinal);

        // Reads go on, bit-exact.
        for (var i = 0; i < files.Count; i++)
        {
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[i], back);
            Assert.True(files[i].AsSpan().SequenceEqual(back.ToArray()), $"record {i} came back different");
        }

        AssertNoRequestContext(_s3rver.Front.Requests);
        _output.WriteLine($"read back at {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task NoTraceContext_ReachesTheCloud_InAnyMode_AndEveryModeSendsTheSameHeaderNames()
    {
        var serverTraces = new HashSet<ActivityTraceId>();
        using var listener = new ActivityListener
        {
            // The proxy's own server activities too, as a deployment with OpenTelemetry on would have
            // them: the context then certainly exists inside the proxy, and must still stop there.
            ShouldListenTo = source => source.Name is SourceName or "Microsoft.AspNetCore" or TrustedProxy.Telemetry.ProxyTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity =>
            {
                if (activity.Source.Name == "Microsoft.AspNetCore")
                {
                    lock (serverTraces)
                    {
                        serverTraces.Add(activity.TraceId);
                    }
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        var fastReads = new Dictionary<string, string?>
        {
            ["TrustedProxy:ObliviousRetrieval:Schedule"] = "epochs",
            ["TrustedProxy:ObliviousRetrieval:EpochSeconds"] = "0.1",
        };
        var modes = new (string Name, Dictionary<string, string?> Settings)[]
        {
            ("default (cache, epoch reads)", Merge(Fast, fastReads)),
            ("write-through", Merge(fastReads, new() { ["TrustedProxy:UploadCache:Enabled"] = "false" })),
            ("immediate reads", Merge(Fast, new() { ["TrustedProxy:ObliviousRetrieval:Schedule"] = "immediate" })),
            ("write-through, immediate reads", Merge(Fast, new() { ["TrustedProxy:UploadCache:Enabled"] = "false", ["TrustedProxy:ObliviousRetrieval:Schedule"] = "immediate" })),
        };

        var shapes = new List<(string Mode, string[] Puts, string[] Gets)>();
        foreach (var (mode, settings) in modes)
        {
            var backend = _s3rver.Backend();
            await using var proxy = await ProxyHost.StartAsync(backend, settings);
            var file = new DicomFileBuilder().Patient("TRACE1", "Trace^Patient").PixelData(40_000, seed: 7).Build();

            using (var ward = Source.StartActivity("ward", ActivityKind.Client))
            {
                Assert.NotNull(ward);
                ward.TraceStateString = "hospital=ward7";
                ward.SetBaggage("patient", "TRACE1");
                var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle;
                await WaitUntilAllReleasedAsync(proxy, [handle], TimeSpan.FromSeconds(20));
                using var back = new MemoryStream();
                await proxy.Client(ProxyRole.Consumer).FetchAsync(handle, back);
                Assert.True(file.AsSpan().SequenceEqual(back.ToArray()), $"{mode}: the record came back different");

                // The control: the client did send the context and the proxy took it up.
                lock (serverTraces)
                {
                    Assert.Contains(ward.TraceId, serverTraces);
                }
            }

            var requests = InBucket(_s3rver.Front.Requests, backend);
            Assert.Contains(requests, r => r.Method == "PUT" && r.Key.Length > 0);
            Assert.Contains(requests, r => r.Method == "GET" && r.Key.Length > 0);
            AssertNoRequestContext(requests, mode);
            shapes.Add((mode, Shapes(requests, "PUT"), Shapes(requests, "GET")));
            _output.WriteLine($"{mode}: {requests.Count} requests; PUT {string.Join(" | ", shapes[^1].Puts)}; GET {string.Join(" | ", shapes[^1].Gets)}");
        }

        var (defaultMode, defaultPuts, defaultGets) = shapes[0];
        Assert.Single(defaultPuts);
        Assert.Single(defaultGets);
        foreach (var (mode, puts, gets) in shapes.Skip(1))
        {
            Assert.True(defaultPuts.SequenceEqual(puts), $"PUT headers in {mode}: {string.Join(" | ", puts)}; in {defaultMode}: {defaultPuts[0]}");
            Assert.True(defaultGets.SequenceEqual(gets), $"GET headers in {mode}: {string.Join(" | ", gets)}; in {defaultMode}: {defaultGets[0]}");
        }

        static string[] Shapes(IEnumerable<WireRequest> requests, string method) =>
            requests.Where(r => r.Method == method && r.Key.Length > 0).Select(r => string.Join(",", r.HeaderNames.Order(StringComparer.Ordinal))).Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    public void Dispose() => _s3rver.Front.Refuse = null;

    /// <summary>About two dozen real DICOM files of varied sizes: pydicom's corpus across its range, and a few larger built ones.</summary>
    private static List<byte[]> TestFiles()
    {
        var corpus = DicomCorpus.WellFormedPart10.OrderBy(f => new FileInfo(f.Path).Length).ThenBy(f => f.Name, StringComparer.Ordinal).ToList();
        var step = Math.Max(1, corpus.Count / 20);
        var files = corpus.Where((_, i) => i % step == 0).Take(20).Select(f => File.ReadAllBytes(f.Path)).ToList();
        files.AddRange(new[] { 45_000, 90_000, 160_000, 250_000 }.Select((size, i) => new DicomFileBuilder().Patient($"COVER{i}", "Cover^Patient").PixelData(size, seed: i).Build()));
        return files;
    }

    /// <summary>Polls (50 ms) until every real block of the records is released; returns them.</summary>
    private static async Task<List<CacheBlock>> WaitUntilAllReleasedAsync(ProxyHost proxy, IReadOnlyList<string> handles, TimeSpan timeout)
    {
        var index = proxy.Services.GetRequiredService<BlockIndex>();
        var engine = proxy.Services.GetRequiredService<UploadCacheEngine>();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var blocks = new List<CacheBlock>();
            foreach (var handle in handles)
            {
                blocks.AddRange(await index.OfRecordAsync(handle));
            }

            Assert.NotEmpty(blocks);
            var waiting = blocks.Count(b => b.State != BlockState.Released);
            if (waiting == 0 && engine.Snapshot().WaitingBlocks == 0)
            {
                return blocks;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{waiting} of {blocks.Count} real blocks still not released after {timeout.TotalSeconds} s");
            await Task.Delay(50);
        }
    }

    private static bool IsRealBlock(ProxyHost? proxy, string key)
    {
        if (proxy is null)
        {
            return false;
        }

        var index = proxy.Services.GetRequiredService<BlockIndex>();
        var real = index.InStateAsync(BlockState.Cached, BlockKind.Real).GetAwaiter().GetResult()
            .Concat(index.InStateAsync(BlockState.Released, BlockKind.Real).GetAwaiter().GetResult());
        return real.Any(b => b.ObjectName.ToString() == key);
    }

    private long RefusedAtTheFront(BackendSettings backend) =>
        InBucket(_s3rver.Front.Requests, backend).Count(r => r.Method == "PUT" && r.FrontError == "AccessDenied");

    /// <summary>The requests of this test's bucket (the front is shared by the collection).</summary>
    private static List<WireRequest> InBucket(IEnumerable<WireRequest> requests, BackendSettings backend)
    {
        var bucket = "/" + backend.Settings["TrustedProxy:Storage:s3:Bucket"];
        return requests.Where(r => r.Path == bucket || r.Path.StartsWith(bucket + "/", StringComparison.Ordinal)).ToList();
    }

    private static void AssertOneShape(IReadOnlyList<WireRequest> writes)
    {
        var first = writes[0];
        foreach (var write in writes)
        {
            Assert.Equal(first.Query, write.Query);
            Assert.True(first.HeaderNames.SetEquals(write.HeaderNames), $"{write} has headers {string.Join(",", write.HeaderNames.Order())}; {first} has {string.Join(",", first.HeaderNames.Order())}");
            foreach (var name in write.HeaderNames.Where(n => !PerRequestHeaders.Contains(n) && !n.StartsWith("x-amz-checksum-", StringComparison.Ordinal)))
            {
                Assert.True(first.Header(name) == write.Header(name), $"{name}: '{write.Header(name)}' on {write}, '{first.Header(name)}' on {first}");
            }
        }
    }

    private static void AssertNoRequestContext(IEnumerable<WireRequest> requests, string mode = "")
    {
        foreach (var request in requests)
        {
            foreach (var header in ContextHeaders)
            {
                Assert.True(request.Header(header) is null, $"{mode} {request} carried {header}: {request.Header(header)}");
            }
        }
    }

    private static async Task<JsonElement> HealthAsync(ProxyHost proxy)
    {
        using var response = await proxy.Client(ProxyRole.Admin).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("checks").Clone();
    }

    private static Dictionary<string, string?> Merge(Dictionary<string, string?> first, Dictionary<string, string?> second)
    {
        var merged = new Dictionary<string, string?>(first);
        foreach (var (key, value) in second)
        {
            merged[key] = value;
        }

        return merged;
    }
}
