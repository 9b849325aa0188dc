using System.Text.Json;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>'tproxy policy': validate files offline, test requests offline or against the running proxy.</summary>
public sealed class PolicyCliTests : ProxyTest
{
    [Fact]
    public async Task Validate_AcceptsTheShippedPolicy_FromACheckout_AndRefusesABrokenFileInOneLineWithItsPlace()
    {
        using var broken = new TemporaryDirectory();
        await File.WriteAllTextAsync(broken.File("10-broken.yaml"), "version: 1\nrules:\n  - id: r\n    effect: permit\n    roles: [consumer, nurse]\n");

        var shipped = await CliProcess.RunAsync(Repository.Root, "policy", "validate");
        var refused = await CliProcess.RunAsync(Repository.Root, "policy", "validate", broken.Path);

        Assert.True(shipped.ExitCode == 0, shipped.Error);
        Assert.StartsWith("ok: 5 files, 25 rules, 3 consent entries, version ", shipped.Output, StringComparison.Ordinal);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("tproxy: 10-broken.yaml:5:23: 'nurse' is not one of the roles: producer, consumer, compliance, admin, pacs", refused.Error.Trim());
    }

    [Fact]
    public async Task Test_DecidesOffline_AndAgainstTheProxy_AndExpectFailsOnADifferentDecision()
    {
        var policies = Repository.Path("config", "policies");
        string[] request = ["policy", "test", "--org", "Haukeland", "--role", "consumer", "--action", "retrieve", "--purpose", "emergency", "--origin", "Oslo Fertility Clinic", "--modality", "US"];

        var offline = await CliProcess.RunAsync(Proxy.Root, [.. request, "--policies", policies, "--expect", "deny"]);
        var glass = await CliProcess.RunAsync(Proxy.Root, [.. request, "--policies", policies, "--justification", "ectopic pregnancy suspected", "--json"]);
        var wrong = await CliProcess.RunAsync(Proxy.Root, [.. request, "--policies", policies, "--expect", "permit"]);
        var online = await CliProcess.RunAsync(Proxy.Root, [.. request, "--as", "compliance", "--server", Proxy.BaseAddress.ToString(), "--json"]);

        Assert.True(offline.ExitCode == 0, offline.Error);
        Assert.StartsWith("denied by sensitive-origin-stays-home: records of the fertility clinic are read only by the clinic itself", offline.Output, StringComparison.Ordinal);
        Assert.Contains("note: break-glass rule break-glass-emergency would apply with a Break-Glass-Justification", offline.Output, StringComparison.Ordinal);
        var permitted = JsonDocument.Parse(glass.Output).RootElement;
        Assert.True(permitted.GetProperty("permitted").GetBoolean());
        Assert.True(permitted.GetProperty("breakGlass").GetBoolean());
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("expected permit, the policy says deny by sensitive-origin-stays-home", wrong.Error, StringComparison.Ordinal);
        Assert.True(online.ExitCode == 0, online.Error);
        Assert.Equal("sensitive-origin-stays-home", JsonDocument.Parse(online.Output).RootElement.GetProperty("rule").GetString());
    }
}
