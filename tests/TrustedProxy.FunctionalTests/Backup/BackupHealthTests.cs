using System.Text.Json.Nodes;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Backup;

/// <summary>
/// The backup's lag in /healthz: administrators see it Degraded past the alarm threshold, with its
/// figures; members see an overall status that leaves it out, since a lagging backup means scarce
/// dummy slots, that is a real load close to the slot rate.
/// </summary>
public sealed class BackupHealthTests
{
    [Fact]
    public async Task ABackupBehindItsAlarmThreshold_IsDegradedForAdministrators_AndInvisibleToMembers()
    {
        // Held: about one slot in three hours, so nothing of the backup ships during the test.
        var settings = new Dictionary<string, string?>(UploadCacheTests.Held)
        {
            ["TrustedProxy:Backup:Enabled"] = "true",
            ["TrustedProxy:Backup:IntervalSeconds"] = "1",
            ["TrustedProxy:Backup:LagAlarmSeconds"] = "1",
        };
        await using var proxy = await ProxyHost.StartAsync(settings: settings);

        JsonNode admin;
        var deadline = DateTimeOffset.UtcNow.AddSeconds(60);
        do
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200));
            admin = await HealthAsync(proxy, ProxyRole.Admin);
        }
        // Degraded (lag past 1 s) can come before the first generation is staged on a loaded machine: wait for both.
        while ((admin["checks"]!["backup"]!["status"]!.GetValue<string>() != "Degraded" || admin["checks"]!["backup"]!["data"]!["objectsWaiting"]!.GetValue<long>() == 0)
            && DateTimeOffset.UtcNow < deadline);

        var backup = admin["checks"]!["backup"]!;
        Assert.Equal("Degraded", backup["status"]!.GetValue<string>());
        Assert.Contains("behind", backup["description"]!.GetValue<string>());
        Assert.True(backup["data"]!["objectsWaiting"]!.GetValue<long>() > 0);
        // Degraded means lag > 1 s; the figure shown is rounded to a tenth, so 1.04 s reads 1.0.
        Assert.True(backup["data"]!["lagSeconds"]!.GetValue<double>() >= 1);
        Assert.Equal("Degraded", admin["status"]!.GetValue<string>());

        var member = await HealthAsync(proxy, ProxyRole.Consumer);
        Assert.Equal("Healthy", member["status"]!.GetValue<string>());
        Assert.Null(member["checks"]);
    }

    private static async Task<JsonNode> HealthAsync(ProxyHost proxy, ProxyRole role)
    {
        using var response = await proxy.Client(role).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }
}
