using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Audit;

/// <summary>
/// The witness with the real server and the real command line (issue 16): the server pushes its
/// checkpoints to TrustedProxy:Audit:Witness:Directory and says so in /healthz;
/// <c>tproxy audit rotate-key</c> beside it hands over and the server follows;
/// <c>tproxy audit verify --witness</c> finds every witnessed checkpoint in the log, and says when
/// one was altered there or the log was put back to an older copy.
/// </summary>
public sealed class AuditWitnessServerTests : ProxyTest, IDisposable
{
    private readonly TemporaryDirectory _witness = new();

    protected override Task<ProxyHost> StartProxyAsync() =>
        ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Audit:Witness:Directory"] = _witness.Path });

    [Fact]
    public async Task TheServersCheckpoints_ReachTheWitness_AndVerifyThroughTheCli_AcrossAKeyRotation()
    {
        var audit = Path.Combine(Proxy.Root, "data", "audit");
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var older = Directory.CreateDirectory(Path.Combine(Proxy.Root, "older")).FullName;
        foreach (var file in Directory.GetFiles(audit))
        {
            File.Copy(file, Path.Combine(older, Path.GetFileName(file)));
        }

        var first = await WitnessedCheckpointAsync();
        var rotate = await CliProcess.RunAsync(Proxy.Root, "audit", "rotate-key");
        Assert.True(rotate.ExitCode == 0, rotate.Error);
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var second = await WitnessedCheckpointAsync();
        Assert.NotEqual(first.KeyId, second.KeyId);

        var admin = Proxy.Client(ProxyRole.Admin);
        var health = JsonNode.Parse(await (await admin.SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"))).Content.ReadAsStringAsync())!;
        var check = health["checks"]!["audit-witness"]!;
        Assert.Equal("Healthy", check["status"]!.GetValue<string>());
        Assert.True(check["data"]!["directory"]!["witnessedSize"]!.GetValue<long>() >= second.Size, check.ToJsonString());

        var intact = await CliProcess.RunAsync(Proxy.Root, "audit", "verify", "--witness", _witness.Path);
        Assert.True(intact.ExitCode == 0, intact.Error);
        Assert.StartsWith("audit log intact: ", intact.Output);
        Assert.Contains("the witness's checkpoint file", intact.Output);

        // An older copy of the log and its files put back: the witness holds what came after.
        await Proxy.StopAsync();
        Directory.Delete(audit, recursive: true);
        Directory.Move(older, audit);
        var rolledBack = await CliProcess.RunAsync(Proxy.Root, "audit", "verify", "--witness", _witness.Path);
        Assert.Equal(1, rolledBack.ExitCode);
        Assert.Contains("rolled back to an older state", rolledBack.Error);

        // A witnessed checkpoint altered where it is kept is reported, not trusted.
        var kept = Directory.GetFiles(_witness.Path).Order(StringComparer.Ordinal).First();
        var altered = JsonNode.Parse(File.ReadAllText(kept))!;
        altered["time"] = "2020-01-01T00:00:00.0000000Z";
        File.WriteAllText(kept, altered.ToJsonString());
        var forged = await CliProcess.RunAsync(Proxy.Root, "audit", "verify", "--witness", _witness.Path);
        Assert.Equal(1, forged.ExitCode);
        Assert.Contains("has a signature that does not verify with audit key", forged.Error);
    }

    public void Dispose() => _witness.Dispose();

    // A checkpoint signed now by the server, once the witness directory holds it (watched, not polled).
    private async Task<AuditCheckpoint> WitnessedCheckpointAsync()
    {
        using var watcher = new FileSystemWatcher(_witness.Path, "checkpoint-*.json") { EnableRaisingEvents = true };
        var created = new List<string>();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var checkpoint = (await (await Proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/checkpoint")))
            .Content.ReadFromJsonAsync<AuditCheckpoint>())!;
        var name = string.Create(CultureInfo.InvariantCulture, $"checkpoint-{checkpoint.Size:D20}-");
        watcher.Created += (_, e) =>
        {
            if (e.Name!.StartsWith(name, StringComparison.Ordinal))
            {
                arrived.TrySetResult();
            }
        };
        if (!Directory.GetFiles(_witness.Path, name + "*").Any())
        {
            await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }

        return checkpoint;
    }
}
