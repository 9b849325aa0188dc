using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>The policy API for compliance officers: files in force, their history, what-if.</summary>
public sealed class PolicyApiTests : ProxyTest
{
    [Fact]
    public async Task ACompliance_Officer_ReadsThePolicyInForce_AndItsHistory_AsTheFilesSay()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        var shipped = PolicyLoader.LoadDirectory(Repository.Path("config", "policies"), new PolicyOptions());

        var inForce = await officer.GetPolicyAsync();
        var history = await officer.PolicyHistoryAsync();
        var version = await officer.PolicyVersionAsync(history[0].Id);

        Assert.Equal(shipped.Version, inForce.Version.Hash);
        Assert.Equal(shipped.Files.Select(f => (f.Name, f.Content)), inForce.Version.Files.Select(f => (f.Name, f.Content!)));
        Assert.Equal((shipped.RuleCount, shipped.ConsentCount), (inForce.Rules, inForce.ConsentEntries));
        Assert.Null(inForce.LastRejection);
        Assert.Equal(inForce.Version.Id, Assert.Single(history).Id);
        Assert.All(history[0].Files, f => Assert.Null(f.Content));
        Assert.Equal(inForce.Version.Files, version.Files);
        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxyException>(() => officer.PolicyVersionAsync(999))).Status);
        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).GetPolicyAsync());
        Assert.Equal((403, "default-deny"), (refused.Status, refused.Detail.Split(':')[0].Replace("denied by ", "", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task WhatIf_DecidesWithoutPerforming_ByAttributesOrByAStoredRecord()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Study("1.2.826.0.1.44.1", "1.2.826.0.1.44.1.1", "20150505", "MG").Build()));

        var research = await officer.WhatIfAsync(new WhatIfRequest("Haukeland", "consumer", "retrieve-oblivious", "research"));
        var stored = await officer.WhatIfAsync(new WhatIfRequest("Nordic Cohort Study", "consumer", "retrieve", "research", DateTimeOffset.Parse("2025-03-12T10:00:00Z"), Record: new WhatIfRecord(upload.Handle)));
        var glass = await officer.WhatIfAsync(new WhatIfRequest("Haukeland", "consumer", "retrieve", "emergency", BreakGlassJustification: "arrest",
            Record: new WhatIfRecord(OriginOrganisation: "Oslo Fertility Clinic", Modality: "US")));

        Assert.True(research.Permitted);
        Assert.Equal(new WhatIfObligations("deidentified", null, true, 8), research.Obligations);
        Assert.Equal("request", research.Level);
        Assert.False(stored.Permitted);
        Assert.Equal(("nordic-cohort-ct-mr-only", "record"), (stored.Rule, stored.Level));
        Assert.Contains(stored.Matched, m => m is { Rule: "nordic-cohort-ct-mr-only", Source: "30-restrictions.yaml:29" });
        Assert.True(glass is { Permitted: true, BreakGlass: true, Rule: "break-glass-emergency" });
        Assert.Contains(glass.Matched, m => m is { Rule: "sensitive-origin-stays-home", Status: "overridden" });
        Assert.Single(await Proxy.CloudObjectsAsync());

        foreach (var invalid in new[]
        {
            new WhatIfRequest("Haukeland", "nurse", "retrieve"),
            new WhatIfRequest("Haukeland", "consumer", "read"),
            new WhatIfRequest("Haukeland", "consumer", "retrieve", "curiosity"),
            new WhatIfRequest("", "consumer", "retrieve"),
            new WhatIfRequest("Haukeland", "consumer", "retrieve", Record: new WhatIfRecord(Modality: "CT")),
            new WhatIfRequest("Haukeland", "consumer", "retrieve", Record: new WhatIfRecord(upload.Handle, Modality: "CT")),
        })
        {
            Assert.Equal(400, (await Assert.ThrowsAsync<TrustedProxyException>(() => officer.WhatIfAsync(invalid))).Status);
        }

        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxyException>(() => officer.WhatIfAsync(new WhatIfRequest("Haukeland", "consumer", "retrieve", Record: new WhatIfRecord("zzzzzzzzzzzzzzzzzzzzzzzzzz"))))).Status);
    }
}
