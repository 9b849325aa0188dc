using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Audit;

namespace TrustedProxy.Tests.Audit;

/// <summary>
/// The witness (issue 16): checkpoints pushed outside the proxy, to a directory and to a real HTTP
/// witness on Kestrel, catch a rewrite even by whoever holds the master key and the audit key;
/// a witness that is down holds up nothing and loses nothing; what a witness holds is checked too.
/// </summary>
public sealed class AuditWitnessTests : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly AuditTestLog _log = new(checkpointEveryEntries: 5);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 18, 0, 0, TimeSpan.Zero));
    private readonly string _witnessDirectory;
    private TestWitnessServer? _server;

    public AuditWitnessTests()
    {
        _witnessDirectory = Path.Combine(_log.Root, "witness");
        Directory.CreateDirectory(_witnessDirectory);
    }

    [Fact]
    public async Task ALogRewrittenAndReSigned_WithTheMasterKeyAndTheAuditKey_VerifiesLocally_ButNotAgainstTheWitness()
    {
        var options = await BothWitnessesAsync();
        await WriteWitnessedAsync(options, tag: "a");

        // Whoever holds the master key unwraps the audit key beside the log, writes the history
        // they prefer (entry 2 changed) and signs every checkpoint again with the same key.
        DeleteLogKeepingKeys();
        await using (var forged = _log.Open())
        {
            await AuditTestLog.AppendAsync(forged, 2, "a");
            await forged.AppendAsync(AuditTestLog.Event("b", 2));
            for (var i = 3; i < 12; i++)
            {
                await forged.AppendAsync(AuditTestLog.Event("a", i));
            }
        }

        Assert.True(_log.Verify().Intact, "the rewrite is consistent: without the witness nothing shows it");
        foreach (var witness in AuditWitnesses.From(options))
        {
            var result = AuditLog.VerifyDirectory(_log.Paths, _log.Trust, await AuditWitnesses.AnchorsAsync(witness, default), _log.Options);

            Assert.False(result.Intact);
            Assert.Equal(AuditProblemKinds.Forked, result.Problem!.Kind);
            Assert.Equal(4, result.Problem.Entry);
            Assert.Contains("the log's first 5 entries do not have the root the witness's", result.Problem.Message);
        }
    }

    [Fact]
    public async Task ALogRewrittenUnderAFreshKey_WithTheMasterKeyAlone_IsCaughtByTheWitnessesSignatures()
    {
        var options = await BothWitnessesAsync();
        await WriteWitnessedAsync(options, tag: "a");

        // The audit key store replaced too: a new first key, a new history.
        Directory.Delete(_log.Paths.Directory, recursive: true);
        await _log.CreateAsync(12, tag: "b");

        Assert.True(_log.Verify().Intact);
        foreach (var witness in AuditWitnesses.From(options))
        {
            var result = AuditLog.VerifyDirectory(_log.Paths, _log.Trust, await AuditWitnesses.AnchorsAsync(witness, default), _log.Options);

            Assert.Equal(AuditProblemKinds.BadSignature, result.Problem!.Kind);
            Assert.Contains("which is none of the log's keys", result.Problem.Message);
        }
    }

    [Fact]
    public async Task AnUntouchedLog_ContainsEveryWitnessedCheckpoint()
    {
        var options = await BothWitnessesAsync();
        var checkpoints = await WriteWitnessedAsync(options, tag: "a");

        foreach (var witness in AuditWitnesses.From(options))
        {
            var anchors = await AuditWitnesses.AnchorsAsync(witness, default);
            var result = AuditLog.VerifyDirectory(_log.Paths, _log.Trust, anchors, _log.Options);

            Assert.True(result.Intact, result.Summary);
            Assert.Equal(checkpoints.Select(c => c.Size), anchors.Select(a => a.Checkpoint.Size));
        }

        Assert.Equal(checkpoints, _server!.Received);
    }

    [Fact]
    public async Task ATamperedWitnessCheckpoint_IsReportedAsABadSignature()
    {
        var options = await BothWitnessesAsync();
        await WriteWitnessedAsync(options, tag: "a");
        var file = Directory.GetFiles(_witnessDirectory).Order(StringComparer.Ordinal).First();
        var stored = (JsonObject)JsonNode.Parse(File.ReadAllText(file))!;
        stored["root"] = new string('0', 64);
        File.WriteAllText(file, stored.ToJsonString());
        _server!.Tamper(1, checkpoint => checkpoint["size"] = 3);

        foreach (var witness in AuditWitnesses.From(options))
        {
            var result = AuditLog.VerifyDirectory(_log.Paths, _log.Trust, await AuditWitnesses.AnchorsAsync(witness, default), _log.Options);

            Assert.Equal(AuditProblemKinds.BadSignature, result.Problem!.Kind);
            Assert.Contains("has a signature that does not verify with audit key", result.Problem.Message);
        }
    }

    [Fact]
    public async Task SomethingNotACheckpoint_InTheWitnessDirectory_IsNamed()
    {
        var options = await BothWitnessesAsync();
        await WriteWitnessedAsync(options, tag: "a");
        File.WriteAllText(Path.Combine(_witnessDirectory, "checkpoint-00000000000000000009-0000000000000000.json"), "{\"format\":\"something else\"}");

        var error = await Assert.ThrowsAsync<FormatException>(() => AuditWitnesses.AnchorsAsync(AuditWitnesses.Parse(_witnessDirectory, new HttpClient()), default));

        Assert.Contains("checkpoint-00000000000000000009-0000000000000000.json", error.Message);
    }

    [Fact]
    public async Task AWitnessDown_BlocksNoAppend_AndAfterARestartAndItsReturn_HoldsEveryCheckpoint()
    {
        var port = TestWitnessServer.FreePort();
        var options = new AuditWitnessOptions { Url = $"http://127.0.0.1:{port}/witness", RetryInitialSeconds = 1, RetryMaxSeconds = 8 };
        await using var log = _log.Open();

        // The witness is down: every append still returns once durable, checkpoints queue.
        await using (var first = Publisher(log, options))
        {
            first.Start();
            await AuditTestLog.AppendAsync(log, 12, "a");
            await log.CheckpointAsync();
            var failing = await UntilAsync(first, s => s[0].Failing);
            Assert.True(failing[0].Pending >= 3);
            Assert.Equal(0, failing[0].WitnessedSize);
            Assert.NotNull(failing[0].LastError);
        }

        // The proxy restarts (nothing was pushed), more is appended, still down.
        await using var second = Publisher(log, options);
        second.Start();
        await AuditTestLog.AppendAsync(log, 6, "b");
        var last = (await log.CheckpointAsync())!;
        await UntilAsync(second, s => s[0].Failing);

        // The witness comes back on its address; the next retry (on the injected clock) pushes everything.
        _server = await TestWitnessServer.StartAsync(port);
        _time.Advance(TimeSpan.FromSeconds(options.RetryMaxSeconds));
        await second.WaitForWitnessedAsync(last.Size).WaitAsync(Timeout);

        var inLog = AuditWitnessPublisher.CheckpointsIn(_log.Paths, _log.Options.MaxEntryBytes, after: 0).ToList();
        Assert.Equal(inLog, _server.Received);
        Assert.Equal(last, inLog[^1]);
        var status = second.Statuses[0];
        Assert.False(status.Failing);
        Assert.Equal(0, status.Pending);
        Assert.Equal($"{last.Size} {last.Root}\n", File.ReadAllText(AuditWitnessPublisher.MarkerPath(_log.Paths, "http")));
    }

    [Fact]
    public async Task CheckpointsAppendedByAnotherProcess_ArePushedToo()
    {
        var options = await BothWitnessesAsync();
        await using var log = _log.Open();
        await using var publisher = Publisher(log, options);
        publisher.Start();
        await AuditTestLog.AppendAsync(log, 2, "server");

        // The command line appends and signs while the server runs; the server takes it in at its next append.
        AuditCheckpoint fromCli;
        await using (var cli = _log.Open())
        {
            await AuditTestLog.AppendAsync(cli, 1, "cli");
            fromCli = (await cli.CheckpointAsync())!;
        }

        await log.AppendAsync(AuditTestLog.Event("server", 3));
        await publisher.WaitForWitnessedAsync(fromCli.Size).WaitAsync(Timeout);

        Assert.Contains(fromCli, _server!.Received);
    }

    [Fact]
    public async Task AfterARestart_OnlyWhatTheWitnessLacksIsPushed_AndAMarkerTheLogDoesNotHoldIsNotTrusted()
    {
        _server = await TestWitnessServer.StartAsync();
        var options = new AuditWitnessOptions { Url = _server.Url };
        var first = await WriteWitnessedAsync(options, tag: "a");
        Assert.Equal(first, _server.Received);

        // A restart with a good marker: the next checkpoint alone goes out.
        AuditCheckpoint next;
        await using (var log = _log.Open())
        {
            await using var publisher = Publisher(log, options);
            publisher.Start();
            await log.AppendAsync(AuditTestLog.Event("b", 0));
            next = (await log.CheckpointAsync())!;
            await publisher.WaitForWitnessedAsync(next.Size).WaitAsync(Timeout);
        }

        Assert.Equal([.. first, next], _server.Received);

        // A marker naming a checkpoint the log never had (a log restored from an older backup would look so): all again.
        File.WriteAllText(AuditWitnessPublisher.MarkerPath(_log.Paths, "http"), $"999 {new string('a', 64)}\n");
        await using (var log = _log.Open())
        {
            await using var publisher = Publisher(log, options);
            publisher.Start();
            await publisher.WaitForWitnessedAsync(next.Size).WaitAsync(Timeout);
        }

        Assert.Equal([.. first, next, .. first, next], _server.Received);
    }

    [Fact]
    public void WitnessOptions_ReportEveryProblemAtOnce()
    {
        var errors = new AuditWitnessOptions { Directory = "relative/witness", Url = "ftp://witness.example", RetryInitialSeconds = 10, RetryMaxSeconds = 5 }.Validate().ToList();

        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("TrustedProxy:Audit:Witness:Url:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("TrustedProxy:Audit:Witness:Directory:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("TrustedProxy:Audit:Witness:RetryMaxSeconds", StringComparison.Ordinal));
        Assert.Empty(new AuditWitnessOptions { Directory = "/mnt/witness", Url = "https://witness.example/tproxy" }.Validate());
        Assert.Single(new AuditWitnessOptions { Url = "https://user:secret@witness.example/" }.Validate());
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _log.Dispose();
    }

    private async Task<AuditWitnessOptions> BothWitnessesAsync()
    {
        _server = await TestWitnessServer.StartAsync();
        return new AuditWitnessOptions { Directory = _witnessDirectory, Url = _server.Url };
    }

    // 12 entries with checkpoints at 5 and 11 and a last one at 14, all witnessed before the log closes.
    private async Task<List<AuditCheckpoint>> WriteWitnessedAsync(AuditWitnessOptions options, string tag)
    {
        await using var log = _log.Open();
        await using var publisher = Publisher(log, options);
        publisher.Start();
        await AuditTestLog.AppendAsync(log, 12, tag);
        var last = (await log.CheckpointAsync())!;
        await publisher.WaitForWitnessedAsync(last.Size).WaitAsync(Timeout);
        return AuditWitnessPublisher.CheckpointsIn(_log.Paths, _log.Options.MaxEntryBytes, after: 0).ToList();
    }

    private void DeleteLogKeepingKeys()
    {
        foreach (var file in Directory.GetFiles(_log.Paths.Directory).Where(f => Path.GetFileName(f) != AuditKeyStore.FileName))
        {
            File.Delete(file);
        }
    }

    private AuditWitnessPublisher Publisher(AuditLog log, AuditWitnessOptions options) =>
        new(log, AuditWitnesses.From(options), options, _time, NullLogger.Instance);

    private static async Task<IReadOnlyList<AuditWitnessStatus>> UntilAsync(AuditWitnessPublisher publisher, Func<IReadOnlyList<AuditWitnessStatus>, bool> condition)
    {
        while (true)
        {
            var next = publisher.NextChangeAsync();
            var statuses = publisher.Statuses;
            if (condition(statuses))
            {
                return statuses;
            }

            await next.WaitAsync(Timeout);
        }
    }
}
