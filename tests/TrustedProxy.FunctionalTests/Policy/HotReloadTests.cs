using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>Editing the policy files of a running proxy: a valid change takes effect; an invalid one is refused at its line and the version before it stays.</summary>
public sealed class HotReloadTests : OwnPolicyTest
{
    [Fact]
    public async Task AValidEdit_TakesEffect_AndJoinsTheHistory()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        var before = await officer.GetPolicyAsync();
        await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch());

        await File.WriteAllTextAsync(Path.Combine(PolicyDirectory, "60-freeze.yaml"), """
            version: 1
            rules:
              - id: local-consumers-frozen
                description: the local hospital's consumer credentials are frozen during the audit
                effect: deny
                organisations: [Local Hospital]
                roles: [consumer]
            """);
        var after = await WaitAsync(officer, p => p.Version.Hash != before.Version.Hash);

        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch()));
        Assert.Equal(403, refused.Status);
        Assert.Contains("local-consumers-frozen", refused.Detail, StringComparison.Ordinal);
        Assert.Contains(after.Version.Files, f => f.Name == "60-freeze.yaml");
        Assert.Equal([after.Version.Id, before.Version.Id], (await officer.PolicyHistoryAsync()).Select(v => v.Id));
        var decision = (await DecisionsAfterAsync(0)).Last(d => d.Rule == "local-consumers-frozen");
        Assert.Equal(after.Version.Hash, decision.PolicyVersion);

        // Both versions are in the tamper-evident audit log, the new one naming the one it replaced.
        var changes = File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "policy-change")
            .Select(e => e.GetProperty("data"))
            .ToList();
        Assert.Equal([before.Version.Hash, after.Version.Hash], changes.Select(c => c.GetProperty("version").GetString()));
        Assert.Equal(before.Version.Hash, changes[1].GetProperty("previous").GetString());
        Assert.Contains(changes[1].GetProperty("files").EnumerateArray(), f => f.GetString()!.StartsWith("60-freeze.yaml sha256:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnInvalidEdit_IsRefusedAtItsFileAndLine_AndThePreviousVersionStaysInForce()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        var before = await officer.GetPolicyAsync();
        var original = await File.ReadAllTextAsync(Path.Combine(PolicyDirectory, "10-roles.yaml"));

        // A typo in the consumers' grant: were it taken, consumers would lose every read.
        await File.WriteAllTextAsync(Path.Combine(PolicyDirectory, "10-roles.yaml"), original.Replace("actions: [search, retrieve, retrieve-oblivious]", "actions: [search, retreive, retrieve-oblivious]", StringComparison.Ordinal));
        var rejected = await WaitAsync(officer, p => p.LastRejection is not null);

        var problem = Assert.Single(rejected.LastRejection!.Problems);
        var lines = original.Split('\n').ToList();
        var line = lines.FindIndex(l => l.Contains("[search, retrieve, retrieve-oblivious]", StringComparison.Ordinal));
        Assert.Equal(("10-roles.yaml", line + 1, lines[line].IndexOf("retrieve,", StringComparison.Ordinal) + 1), (problem.File, problem.Line, problem.Column));
        Assert.Contains("'retreive' is not one of the actions", problem.Message, StringComparison.Ordinal);
        Assert.Equal(before.Version.Hash, rejected.Version.Hash);
        Assert.Single(await officer.PolicyHistoryAsync());
        await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch());

        await File.WriteAllTextAsync(Path.Combine(PolicyDirectory, "10-roles.yaml"), original + "# reviewed\n");
        var fixedPolicy = await WaitAsync(officer, p => p.LastRejection is null && p.Version.Hash != before.Version.Hash);
        Assert.Equal(2, (await officer.PolicyHistoryAsync()).Count);
        Assert.EndsWith("# reviewed\n", fixedPolicy.Version.Files.Single(f => f.Name == "10-roles.yaml").Content, StringComparison.Ordinal);
    }

    /// <summary>The policy in force once it meets <paramref name="condition"/>: checked again after each reload the store attempts, up to 20 s.</summary>
    private async Task<PolicyInForce> WaitAsync(TrustedProxyClient officer, Func<PolicyInForce, bool> condition)
    {
        var store = Proxy.Services.GetRequiredService<PolicyStore>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            // Take the token before looking, so a reload that finishes in between is not missed.
            var reloaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var registration = store.ReloadToken.RegisterChangeCallback(_ => reloaded.TrySetResult(), null);
            var policy = await officer.GetPolicyAsync();
            if (condition(policy))
            {
                return policy;
            }

            try
            {
                await reloaded.Task.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("the policy directory's change was not picked up within 20 s");
            }
        }
    }
}
