using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;

namespace TrustedProxy.Benchmarks;

/// <summary>
/// Audit appends per second, each durable (written and fsync'd) before it returns: one writer
/// appending one entry after another, and eight writers at once, whose appends the log commits
/// together (group commit). Entries are the size of a decision entry (~450 bytes); a checkpoint
/// is signed every 1000. The log is on the temporary directory's disk (say which in the figures).
/// Appends/s = 1 / mean (the mean is per append).
/// </summary>
[MemoryDiagnoser]
public class AuditLogBenchmarks
{
    public const int Appends = 2000;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tproxy-audit-bench-" + Guid.NewGuid().ToString("N")[..8]);
    private ProxyKeyRing _keys = null!;
    private AuditLog _log = null!;

    [GlobalSetup]
    public void Setup()
    {
        _keys = ProxyKeyRing.FromBytes(new byte[ProxyKeyRing.MasterKeyBytes]);
        _log = AuditLog.Open(_directory, _keys, new AuditLogOptions(), TimeProvider.System, new FixedAuditContext(AuditContext.Proxy));
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _log.DisposeAsync();
        _keys.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Appends, Description = "one writer, fsync per append")]
    public Task OneWriter() => WritersAsync(1);

    [Benchmark(OperationsPerInvoke = Appends, Description = "8 concurrent writers, group commit")]
    public Task EightWriters() => WritersAsync(8);

    private Task WritersAsync(int writers) => Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
    {
        for (var i = 0; i < Appends / writers; i++)
        {
            await _log.AppendAsync(Entry(w, i), Context);
        }
    })));

    private static readonly AuditContext Context = new(new AuditActor(AuditActor.MemberKind, "Local Hospital", "consumer", "6B1F0C2A9D3E4F5061728394A5B6C7D8"), "0123456789abcdef0123456789abcdef");

    private static AuditEvent Entry(int writer, int i) => new(AuditKinds.Decision, new JsonObject
    {
        ["action"] = "Retrieve",
        ["resource"] = "GET /api/v1/records/{handle}/content",
        ["purpose"] = "treatment",
        ["result"] = "permit",
        ["rule"] = "consumer-read",
        ["reason"] = "role 'consumer' is granted 'Retrieve', fingerprinted copies",
        ["view"] = "original",
        ["fingerprint"] = true,
        ["writer"] = writer,
        ["n"] = i,
    });
}
