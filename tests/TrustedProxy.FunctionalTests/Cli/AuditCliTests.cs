using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>
/// <c>tproxy audit</c> as an operator and an auditor use it, beside a running proxy: one line per
/// verdict, exit 0 when intact, 1 with the first problem otherwise.
/// </summary>
public sealed class AuditCliTests : ProxyTest
{
    [Fact]
    public async Task Verify_SaysIntact_ThenNamesTheModifiedEntry()
    {
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));

        var intact = await CliProcess.RunAsync(Proxy.Root, "audit", "verify");
        Assert.True(intact.ExitCode == 0, intact.Error);
        Assert.StartsWith("audit log intact: ", intact.Output);

        var log = Path.Combine(Proxy.Root, "data", "audit", "audit.log");
        var lines = File.ReadAllLines(log);
        lines[1] = lines[1].Replace("\"kind\":\"ca-issue\"", "\"kind\":\"ca-issuE\"", StringComparison.Ordinal);
        File.WriteAllText(log, string.Concat(lines.Select(l => l + "\n")));

        var tampered = await CliProcess.RunAsync(Proxy.Root, "audit", "verify");
        Assert.Equal(1, tampered.ExitCode);
        Assert.Equal("tproxy: audit log NOT intact: entry 1 (line 2) was modified: its content does not match its hash", tampered.Error.Trim());
    }

    [Fact]
    public async Task ACheckpointKeptElsewhere_RevealsARollback_ToAVerifierWithOnlyThePublicKey()
    {
        var audit = Path.Combine(Proxy.Root, "data", "audit");
        var elsewhere = Directory.CreateDirectory(Path.Combine(Proxy.Root, "elsewhere")).FullName;
        var older = Path.Combine(Proxy.Root, "older");
        Directory.CreateDirectory(older);
        foreach (var file in Directory.GetFiles(audit))
        {
            File.Copy(file, Path.Combine(older, Path.GetFileName(file)));
        }

        // The CLI appends beside the running server: the CA's issuing is recorded as the operator's.
        var issue = await CliProcess.RunAsync(Proxy.Root, "ca", "issue", "--org", "Haukeland", "--role", "consumer");
        Assert.True(issue.ExitCode == 0, issue.Error);
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var checkpoint = await CliProcess.RunAsync(Proxy.Root, "audit", "checkpoint", "-o", Path.Combine(elsewhere, "kept.json"));
        var key = await CliProcess.RunAsync(Proxy.Root, "audit", "public-key", "-o", Path.Combine(elsewhere, "audit.pem"));
        Assert.True(checkpoint.ExitCode == 0 && key.ExitCode == 0, checkpoint.Error + key.Error);
        Assert.Contains("\"kind\":\"ca-issue\",\"actor\":{\"kind\":\"operator\"", File.ReadAllText(Path.Combine(audit, "audit.log")), StringComparison.Ordinal);

        var holds = await CliProcess.RunAsync(elsewhere, "audit", "verify", "--data", Path.Combine(Proxy.Root, "data"), "--checkpoint", "kept.json", "--public-key", "audit.pem");
        Assert.True(holds.ExitCode == 0, holds.Error);
        Assert.Contains("the checkpoint in 'kept.json'", holds.Output);

        await Proxy.StopAsync();
        Directory.Delete(audit, recursive: true);
        Directory.Move(older, audit);

        var alone = await CliProcess.RunAsync(Proxy.Root, "audit", "verify");
        Assert.Equal(0, alone.ExitCode);
        var rolledBack = await CliProcess.RunAsync(elsewhere, "audit", "verify", "--data", Path.Combine(Proxy.Root, "data"), "--checkpoint", "kept.json", "--public-key", "audit.pem");
        Assert.Equal(1, rolledBack.ExitCode);
        Assert.Contains("rolled back to an older state, or truncated", rolledBack.Error);
        Assert.Single(rolledBack.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task VerifyWithoutAKey_SaysHowToGiveOne()
    {
        using var empty = new TemporaryDirectory();

        var (exitCode, _, error) = await CliProcess.RunAsync(empty.Path, "audit", "verify");

        Assert.Equal(1, exitCode);
        Assert.Contains("no master key", error);
        Assert.Contains("--public-key", error);
    }
}
