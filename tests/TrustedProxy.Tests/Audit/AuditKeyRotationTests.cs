using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;

namespace TrustedProxy.Tests.Audit;

/// <summary>
/// The audit log's own key (issue 16): rotated by a handover entry that the old key and the new
/// both sign, old checkpoints verifying with the first key pinned; a log signed by the key derived
/// from the master key (before issue 16) still verifying, and handed over at its first opening.
/// </summary>
public sealed class AuditKeyRotationTests : IDisposable
{
    private readonly AuditTestLog _log = new(checkpointEveryEntries: 5);

    [Fact]
    public async Task RotatingTheKey_KeepsOldCheckpointsVerifiable_WithOnlyTheFirstKeyPinned()
    {
        AuditCheckpoint before, after;
        string firstPem, firstId;
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 7, "a");
            before = (await log.CheckpointAsync())!;
            (firstPem, firstId) = (log.PublicKey.Pem, log.PublicKey.KeyId);
            after = await log.RotateKeyAsync();
            Assert.Equal(after.KeyId, log.PublicKey.KeyId);
            Assert.Equal([firstId, after.KeyId], log.Keys.Select(k => k.KeyId));
            await AuditTestLog.AppendAsync(log, 4, "b");
        }

        Assert.NotEqual(firstId, after.KeyId);
        var result = AuditLog.VerifyDirectory(_log.Paths, AuditKeyTrust.FromPem(firstPem),
            new AuditAnchor("the checkpoint kept before the rotation", before, External: true), _log.Options);
        Assert.True(result.Intact, result.Summary);
        Assert.Contains("the checkpoint kept before the rotation", result.AnchorsMatched);

        // The handover: signed by the old key (the chain of keys) and the new (it holds its key).
        var handover = _log.Lines().Select(AuditTestLog.Parse).Single(e => e["kind"]!.GetValue<string>() == AuditKinds.AuditKey)["data"]!;
        Assert.Equal("rotate", handover["step"]!.GetValue<string>());
        Assert.Equal(firstId, handover["previous"]!.GetValue<string>());
        var signed = AuditKeyHandover.SignedBytes(firstId, after.KeyId, handover["publicKey"]!.GetValue<string>());
        Assert.True(AuditPublicKey.FromPem(firstPem).VerifiesText(signed, handover["endorsement"]!.GetValue<string>()));

        // Checkpoints after it are the new key's; the old private key has left the store, its public half stays.
        var checkpointKeys = _log.Lines().Select(AuditTestLog.Parse).Where(e => e["kind"]!.GetValue<string>() == AuditKinds.Checkpoint)
            .Select(e => e["data"]!["keyId"]!.GetValue<string>()).ToList();
        Assert.Equal([firstId, firstId, after.KeyId, after.KeyId], checkpointKeys);
        var store = JsonNode.Parse(File.ReadAllText(AuditKeyStore.PathIn(_log.Paths)))!;
        Assert.Null(store["keys"]![0]!["wrappedPrivateKey"]);
        Assert.NotNull(store["keys"]![0]!["retired"]);
        Assert.NotNull(store["keys"]![1]!["wrappedPrivateKey"]);
        Assert.Equal(after.KeyId, store["current"]!.GetValue<string>());
    }

    [Fact]
    public async Task AHandoverToAKeyTheOldKeyDidNotEndorse_IsRefused()
    {
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 3, "a");
            await log.RotateKeyAsync();
        }

        // Someone slips their own key into the handover, proving they hold it, and re-chains.
        var lines = _log.Lines();
        var at = lines.FindIndex(l => AuditTestLog.Parse(l)["kind"]!.GetValue<string>() == AuditKinds.AuditKey);
        var entry = AuditTestLog.Parse(lines[at]);
        using var theirs = AuditSigningKey.Generate();
        var data = entry["data"]!;
        var text = AuditKeyHandover.SignedBytes(data["previous"]!.GetValue<string>(), theirs.PublicKey.KeyId, theirs.PublicKey.SubjectPublicKeyInfoBase64);
        data["keyId"] = theirs.PublicKey.KeyId;
        data["publicKey"] = theirs.PublicKey.SubjectPublicKeyInfoBase64;
        data["possession"] = theirs.SignText(text);
        lines[at] = entry.ToJsonString();
        _log.WriteLines(AuditTestLog.Rehash(lines, at));

        var problem = _log.Verify().Problem!;

        Assert.Equal(AuditProblemKinds.BadSignature, problem.Kind);
        Assert.Equal(at, problem.Entry);
        Assert.Contains("is not endorsed by the previous audit key", problem.Message);
    }

    [Fact]
    public async Task ARotationByAnotherProcess_IsFollowedByTheRunningWriter()
    {
        await using var server = _log.Open();
        await AuditTestLog.AppendAsync(server, 3, "server");
        AuditCheckpoint rotated;
        await using (var cli = _log.Open())
        {
            rotated = await cli.RotateKeyAsync();
        }

        await AuditTestLog.AppendAsync(server, 3, "server");
        var checkpoint = (await server.CheckpointAsync())!;

        Assert.Equal(rotated.KeyId, checkpoint.KeyId);
        Assert.True(_log.Verify().Intact, _log.Verify().Summary);
    }

    [Fact]
    public async Task AHandoverCutShortByACrash_IsFinishedAtTheNextOpening_AtEitherPoint()
    {
        await _log.CreateAsync(3);

        // Crash after the next key was stored, before the handover entry: the opening appends it.
        string halfway;
        using (var store = AuditKeyStore.OpenOrCreate(_log.Paths, _log.Keys, legacyLog: false, TimeProvider.System))
        {
            store.BeginHandover();
            halfway = File.ReadAllText(AuditKeyStore.PathIn(_log.Paths));
        }

        await using (var log = _log.Open())
        {
        }

        var next = JsonNode.Parse(halfway)!["next"]!.GetValue<string>();
        Assert.Single(_log.Lines(), l => l.Contains("\"kind\":\"audit-key\"", StringComparison.Ordinal));
        Assert.Equal(next, AuditKeyStore.PublicKeys(_log.Paths)[^1].KeyId);

        // Crash after the handover entry, before the store was completed: the opening completes it, appending nothing.
        File.WriteAllText(AuditKeyStore.PathIn(_log.Paths), halfway);
        var lines = _log.Lines().Count;
        await using (var log = _log.Open())
        {
            Assert.Equal(next, log.PublicKey.KeyId);
        }

        Assert.Equal(lines, _log.Lines().Count);
        var store2 = JsonNode.Parse(File.ReadAllText(AuditKeyStore.PathIn(_log.Paths)))!;
        Assert.Equal(next, store2["current"]!.GetValue<string>());
        Assert.Null(store2["next"]);
        Assert.Null(store2["keys"]![0]!["wrappedPrivateKey"]);
        Assert.True(_log.Verify().Intact, _log.Verify().Summary);
    }

    [Fact]
    public async Task ALegacyLog_SignedByTheDerivedKey_Verifies_AndIsHandedOverOnceAtItsFirstOpening()
    {
        var legacy = WriteLegacyLog(_log.Paths, _log.Keys, entries: 12, every: 5);
        using var derived = AuditSigningKey.DeriveLegacy(_log.Keys);

        // As an older proxy left it: no key store, checkpoints by the derived key.
        Assert.False(File.Exists(AuditKeyStore.PathIn(_log.Paths)));
        Assert.True(_log.Verify().Intact, _log.Verify().Summary);

        await using (var log = _log.Open())
        {
            Assert.NotEqual(derived.PublicKey.KeyId, log.PublicKey.KeyId);
            await AuditTestLog.AppendAsync(log, 3, "after");
        }

        await using (var again = _log.Open())
        {
        }

        var kept = new AuditAnchor("the legacy checkpoint kept", legacy, External: true);
        var local = AuditLog.VerifyDirectory(_log.Paths, _log.Trust, kept, _log.Options);
        var pinned = AuditLog.VerifyDirectory(_log.Paths, AuditKeyTrust.Of(derived.PublicKey), kept, _log.Options);
        Assert.True(local.Intact, local.Summary);
        Assert.True(pinned.Intact, pinned.Summary);
        Assert.Contains("the legacy checkpoint kept", pinned.AnchorsMatched);
        var handovers = _log.Lines().Select(AuditTestLog.Parse).Where(e => e["kind"]!.GetValue<string>() == AuditKinds.AuditKey).ToList();
        var handover = Assert.Single(handovers)["data"]!;
        Assert.Equal("migrate", handover["step"]!.GetValue<string>());
        Assert.Equal(derived.PublicKey.KeyId, handover["previous"]!.GetValue<string>());
        var store = JsonNode.Parse(File.ReadAllText(AuditKeyStore.PathIn(_log.Paths)))!;
        Assert.Equal(AuditKeyStore.OriginDerived, store["keys"]![0]!["origin"]!.GetValue<string>());
        Assert.NotNull(store["keys"]![0]!["retired"]);
    }

    [Fact]
    public async Task AStoreNotHoldingTheLogsKey_StopsTheWriter_RatherThanSigningWithAnother()
    {
        await _log.CreateAsync(3);
        var path = AuditKeyStore.PathIn(_log.Paths);
        File.Delete(path);

        // Without the store the log looks like one from before, whose derived key did not sign it.
        var error = Assert.Throws<AuditUnavailableException>(() => _log.Open());

        Assert.Contains("does not verify", error.Message);
    }

    public void Dispose() => _log.Dispose();

    /// <summary>Writes a log exactly as the proxy did before issue 16: checkpoints signed by the key derived from the master key, no key store.</summary>
    private static AuditCheckpoint WriteLegacyLog(AuditLogPaths paths, ProxyKeyRing keys, int entries, int every)
    {
        SecretFile.EnsurePrivateDirectory(paths.Directory);
        using var key = AuditSigningKey.DeriveLegacy(keys);
        var chain = new AuditChain(AuditKeyTrust.Of(key.PublicKey));
        var context = new AuditContext(AuditActor.Operator("tester"));
        var time = AuditHashes.Time(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var file = new MemoryStream();
        AuditCheckpoint? last = null;

        void Checkpoint()
        {
            var checkpoint = key.Sign(chain.Count, AuditHashes.Hex(chain.Tree.Root()), time);
            var auditEvent = AuditEvents.Checkpoint(checkpoint);
            file.Write(AuditLine.Write(chain.Count, time, auditEvent.Kind, context, auditEvent.Data, chain.HeadHex, out var hash));
            chain.Use(key.PublicKey);
            chain.Add(hash, checkpoint);
            last = checkpoint;
        }

        for (var i = 0; i < entries; i++)
        {
            var auditEvent = AuditTestLog.Event("legacy", i);
            file.Write(AuditLine.Write(chain.Count, time, auditEvent.Kind, context, auditEvent.Data, chain.HeadHex, out var hash));
            chain.Add(hash, null);
            if (chain.Unanchored >= every)
            {
                Checkpoint();
            }
        }

        if (chain.Unanchored > 0)
        {
            Checkpoint();
        }

        File.WriteAllBytes(paths.Log, file.ToArray());
        File.WriteAllText(paths.Checkpoint, AuditCheckpointFile.ToJson(last!));
        return last!;
    }
}
