using System.Diagnostics;
using System.Text;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;

namespace TrustedProxy.Tests.Audit;

/// <summary>
/// The log as written and as verified: each kind of tampering the issue names is found, with the
/// entry and the kind in the message, and an untouched log verifies.
/// </summary>
public sealed class AuditLogTests : IDisposable
{
    // 12 entries, a checkpoint every 5: checkpoints at entries 5 and 11, a final one at 14 on close.
    private const int Entries = 12;
    private readonly AuditTestLog _log = new(checkpointEveryEntries: 5);

    [Fact]
    public async Task AnUntouchedLog_Verifies_WithItsCheckpoints()
    {
        await _log.CreateAsync(Entries);

        var result = _log.Verify();

        Assert.True(result.Intact, result.Summary);
        Assert.Equal(15, result.Entries);
        Assert.Equal(3, result.Checkpoints);
        Assert.Equal(14, result.LastCheckpoint!.Size);
        Assert.Equal(0, result.UnanchoredEntries);
        Assert.StartsWith("audit log intact: 15 entries, 3 signed checkpoint(s)", result.Summary);
    }

    [Fact]
    public async Task ModifyingOneByteOfAnEntry_IsDetected_AsThatEntryModified()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        lines[7] = lines[7].Replace("\"tag\":\"a\"", "\"tag\":\"b\"", StringComparison.Ordinal);
        _log.WriteLines(lines);

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.Modified, problem.Kind);
        Assert.Equal(7, problem.Entry);
        Assert.Contains("entry 7 (line 8) was modified", problem.Message);
    }

    [Fact]
    public async Task DeletingAnEntry_IsDetected_AsThatEntryMissing()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        lines.RemoveAt(3);
        _log.WriteLines(lines);

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.Deleted, problem.Kind);
        Assert.Equal(3, problem.Entry);
        Assert.Contains("entry 3 is missing", problem.Message);
    }

    [Fact]
    public async Task SwappingTwoEntries_IsDetected_AsReordering()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        (lines[3], lines[4]) = (lines[4], lines[3]);
        _log.WriteLines(lines);

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.Reordered, problem.Kind);
        Assert.Contains("entry 3 is at line 5", problem.Message);
    }

    [Fact]
    public async Task TruncatingTheLog_BelowItsLatestCheckpoint_IsDetected()
    {
        await _log.CreateAsync(Entries);
        _log.WriteLines(_log.Lines().Take(11));

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.Truncated, problem.Kind);
        Assert.Contains("the log holds 11 entries but the latest checkpoint file (checkpoint.json)", problem.Message);
        Assert.Contains("covers 14: truncated", problem.Message);
    }

    [Fact]
    public async Task AMangledLatestCheckpointFile_IsReported_AndTheWriterRefusesIt()
    {
        await _log.CreateAsync(Entries);
        File.WriteAllText(_log.Paths.Checkpoint, "{\"format\":\"something else\"}");

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.Malformed, problem.Kind);
        Assert.Contains("the latest checkpoint file (checkpoint.json) is not a checkpoint", problem.Message);
        Assert.Throws<AuditUnavailableException>(() => _log.Open());
    }

    [Fact]
    public async Task DeletingTheLogFile_WhileItsCheckpointFileRemains_IsDetected()
    {
        await _log.CreateAsync(Entries);
        File.Delete(_log.Paths.Log);

        Assert.Equal(AuditProblemKinds.Truncated, _log.Verify().Problem!.Kind);
        var refused = Assert.Throws<AuditUnavailableException>(() => _log.Open());
        Assert.Contains("missing", refused.Message);
    }

    [Fact]
    public async Task RollingBackToAnOlderCopy_IsDetected_GivenANewerCheckpointKeptElsewhere()
    {
        await _log.CreateAsync(Entries);
        var older = _log.Snapshot();
        AuditCheckpoint kept;
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 7, "b");
            kept = (await log.CheckpointAsync())!;
        }

        _log.RestoreFrom(older);

        // The older copy is consistent in itself, latest-checkpoint file included: only the kept checkpoint shows it.
        Assert.True(_log.Verify().Intact);
        var problem = _log.Verify(kept).Problem!;
        Assert.Equal(AuditProblemKinds.RolledBack, problem.Kind);
        Assert.Contains($"fewer than the {kept.Size} that the checkpoint kept elsewhere", problem.Message);
    }

    [Fact]
    public async Task RollingBackAndWritingOn_IsDetected_AsAFork_GivenANewerCheckpointKeptElsewhere()
    {
        await _log.CreateAsync(Entries);
        var older = _log.Snapshot();
        AuditCheckpoint kept;
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 7, "b");
            kept = (await log.CheckpointAsync())!;
        }

        _log.RestoreFrom(older);
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 20, "other history");
        }

        Assert.True(_log.Verify().Intact);
        var problem = _log.Verify(kept).Problem!;
        Assert.Equal(AuditProblemKinds.Forked, problem.Kind);
        Assert.Contains($"first {kept.Size} entries do not have the root", problem.Message);
    }

    [Fact]
    public async Task TheLogContainingAKeptCheckpoint_Verifies_AndSaysSo()
    {
        await _log.CreateAsync(Entries);
        AuditCheckpoint kept;
        await using (var log = _log.Open())
        {
            kept = (await log.CheckpointAsync())!;
            await AuditTestLog.AppendAsync(log, 3, "b");
        }

        var result = _log.Verify(kept);

        Assert.True(result.Intact, result.Summary);
        Assert.Contains("the checkpoint kept elsewhere", result.AnchorsMatched);
    }

    [Fact]
    public async Task AForgedCheckpointSignature_IsDetected_EvenWithTheChainRecomputed()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        var checkpoint = AuditTestLog.Parse(lines[5]);
        using var otherRing = ProxyKeyRing.FromBytes(new byte[32]);
        using var forger = AuditSigningKey.DeriveLegacy(otherRing);
        var forged = forger.Sign(checkpoint["data"]!["size"]!.GetValue<long>(), checkpoint["data"]!["root"]!.GetValue<string>(), checkpoint["time"]!.GetValue<string>());
        checkpoint["data"]!["signature"] = forged.Signature;
        lines[5] = checkpoint.ToJsonString();
        _log.WriteLines(AuditTestLog.Rehash(lines, 5));

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.BadSignature, problem.Kind);
        Assert.Equal(5, problem.Entry);
        Assert.Contains("does not verify with audit key", problem.Message);
    }

    [Fact]
    public async Task RewritingAnEntry_AndRecomputingTheChain_IsCaughtByTheNextCheckpoint()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        var entry = AuditTestLog.Parse(lines[2]);
        entry["data"]!["tag"] = "rewritten";
        lines[2] = entry.ToJsonString();
        _log.WriteLines(AuditTestLog.Rehash(lines, 2));

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.CheckpointMismatch, problem.Kind);
        Assert.Equal(5, problem.Entry);
    }

    [Fact]
    public async Task ACheckpointKeptElsewhere_ThatTheKeyDidNotSign_IsRefused()
    {
        await _log.CreateAsync(Entries);
        using var otherRing = ProxyKeyRing.FromBytes(new byte[32]);
        using var other = AuditSigningKey.DeriveLegacy(otherRing);
        var foreign = other.Sign(15, new string('a', 64), AuditHashes.Time(DateTimeOffset.UtcNow));

        var problem = _log.Verify(foreign).Problem!;

        Assert.Equal(AuditProblemKinds.BadSignature, problem.Kind);
        Assert.Contains($"the checkpoint kept elsewhere (signed {foreign.Time}) is signed by audit key {other.PublicKey.KeyId}, which is none of the log's keys", problem.Message);
    }

    [Fact]
    public async Task ATornLastEntry_IsReported_ThenSetAsideAndRecordedWhenTheLogIsNextOpened()
    {
        await _log.CreateAsync(Entries);
        var intact = File.ReadAllBytes(_log.Paths.Log);
        var partial = Encoding.UTF8.GetBytes("{\"seq\":15,\"time\":\"2030-01-01T00:00:00.0000000Z\",\"kind\":\"te");
        File.WriteAllBytes(_log.Paths.Log, [.. intact, .. partial]);

        var problem = _log.Verify().Problem!;
        Assert.Equal(AuditProblemKinds.TornTail, problem.Kind);
        Assert.Contains($"the log ends inside entry 15 (line 16, {partial.Length} bytes without a newline)", problem.Message);

        await using (var log = _log.Open())
        {
            var setAside = Assert.Single(log.Repairs);
            Assert.Equal(partial, File.ReadAllBytes(Path.Combine(_log.Paths.Directory, setAside)));
        }

        Assert.True(_log.Verify().Intact);
        var repair = AuditTestLog.Parse(_log.Lines()[15]);
        Assert.Equal(AuditKinds.Repair, repair["kind"]!.GetValue<string>());
        Assert.Equal(intact.Length, repair["data"]!["offset"]!.GetValue<long>());
        Assert.Equal(partial.Length, repair["data"]!["bytes"]!.GetValue<long>());
    }

    [Fact]
    public async Task TheWriter_RefusesToExtendALogThatDoesNotVerify()
    {
        await _log.CreateAsync(Entries);
        var lines = _log.Lines();
        lines.RemoveAt(9);
        _log.WriteLines(lines);

        var refused = Assert.Throws<AuditUnavailableException>(() => _log.Open());

        Assert.Contains("does not verify, so the proxy will not extend it: entry 9 is missing", refused.Message);
    }

    [Fact]
    public async Task ConcurrentAppends_AreAllDurable_InOneUnbrokenChain()
    {
        await using (var log = _log.Open())
        {
            var sequences = await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
            {
                var mine = new List<long>();
                for (var i = 0; i < 50; i++)
                {
                    mine.Add(await log.AppendAsync(AuditTestLog.Event($"writer {w}", i)));
                }

                return mine;
            })));

            Assert.Equal(400, sequences.SelectMany(s => s).Distinct().Count());
        }

        var result = _log.Verify();
        Assert.True(result.Intact, result.Summary);
        Assert.Equal(400, _log.Lines().Count(l => l.Contains("\"kind\":\"test\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task TwoWriters_OnOneLog_TakeTurns_WithoutBreakingTheChain()
    {
        // The server and the command line append to the same files; each picks up what the other wrote.
        await using (var server = _log.Open())
        await using (var commandLine = _log.Open())
        {
            for (var i = 0; i < 10; i++)
            {
                await server.AppendAsync(AuditTestLog.Event("server", i));
                Assert.Equal((2 * i) + 1, await commandLine.AppendAsync(AuditTestLog.Event("cli", i)) - CheckpointsBefore((2 * i) + 1));
            }
        }

        var result = _log.Verify();
        Assert.True(result.Intact, result.Summary);
        Assert.Equal(20, _log.Lines().Count(l => l.Contains("\"kind\":\"test\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Checkpoints_VerifyWithTheExportedPublicKey_AndWithOpenssl()
    {
        AuditCheckpoint checkpoint;
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 5, "a");
            checkpoint = log.LatestCheckpoint!;
        }

        Assert.Equal(5, checkpoint.Size);
        Assert.True(AuditPublicKey.FromPem(_log.PublicKey.Pem).Verifies(checkpoint));
        Assert.False(AuditPublicKey.FromPem(_log.PublicKey.Pem).Verifies(checkpoint with { Size = 4 }));

        // Anyone can check a checkpoint with openssl alone (docs/audit-log.md).
        File.WriteAllText(Path.Combine(_log.Root, "key.pem"), _log.PublicKey.Pem);
        File.WriteAllText(Path.Combine(_log.Root, "signed.txt"), checkpoint.SignedText);
        File.WriteAllBytes(Path.Combine(_log.Root, "signature.der"), Convert.FromBase64String(checkpoint.Signature));
        var openssl = Process.Start(new ProcessStartInfo("openssl", ["dgst", "-sha256", "-verify", "key.pem", "-signature", "signature.der", "signed.txt"])
        {
            WorkingDirectory = _log.Root,
            RedirectStandardOutput = true,
        })!;
        var output = await openssl.StandardOutput.ReadToEndAsync();
        await openssl.WaitForExitAsync();
        Assert.Equal("Verified OK", output.Trim());
    }

    [Fact]
    public async Task TheAuditKey_IsGenerated_NotDerivedFromTheMasterKey_AndKeptOnlyWrapped()
    {
        await _log.CreateAsync(3);
        using var sameMasterKey = new AuditTestLog();
        await sameMasterKey.CreateAsync(3);
        using var derived = AuditSigningKey.DeriveLegacy(_log.Keys);

        Assert.NotEqual(_log.PublicKey.KeyId, sameMasterKey.PublicKey.KeyId);
        Assert.NotEqual(derived.PublicKey.KeyId, _log.PublicKey.KeyId);
        Assert.Equal(32, _log.PublicKey.KeyId.Length);
        var store = File.ReadAllText(AuditKeyStore.PathIn(_log.Paths));
        Assert.DoesNotContain("PRIVATE KEY", store);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(AuditKeyStore.PathIn(_log.Paths)));
    }

    [Fact]
    public async Task AnEntryLongerThanTheLimit_IsRefused_AndTheOthersInItsBatchAreNot()
    {
        _log.Options = _log.Options with { MaxEntryBytes = 1024 };
        await using (var log = _log.Open())
        {
            var tooLong = log.AppendAsync(new AuditEvent("test", new System.Text.Json.Nodes.JsonObject { ["text"] = new string('x', 2000) }));
            var fine = log.AppendAsync(AuditTestLog.Event("a", 1));

            var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => tooLong);
            Assert.Contains("MaxEntryBytes (1024)", refused.Message);
            Assert.Equal(0, await fine);
        }

        Assert.True(_log.Verify().Intact);
    }

    // With a checkpoint every 5 entries, how many checkpoint entries precede the n-th test entry.
    private static int CheckpointsBefore(int n) => n / 5;

    public void Dispose() => _log.Dispose();
}
