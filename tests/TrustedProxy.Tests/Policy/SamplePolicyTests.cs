using System.Globalization;
using TrustedProxy.Policy;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace TrustedProxy.Tests.Policy;

/// <summary>
/// The policy set the proxy ships with (config/policies, the real files), decided request by
/// request as the table SamplePolicyCases.yaml says: result, deciding rule, every rule that
/// matched with its part, obligations, break-glass, notes.
/// </summary>
public sealed class SamplePolicyTests
{
    private static readonly DateTimeOffset DefaultTime = DateTimeOffset.Parse("2025-03-12T10:00:00Z", CultureInfo.InvariantCulture);

    private static readonly Dictionary<string, string> Patients = new()
    {
        ["P0"] = "00000000000000000000000000000000",
        ["P1"] = "3f1a9c0e7b2d4e6f8a0b1c2d3e4f5a6b",
        ["P2"] = "9b8a7c6d5e4f30211f2e3d4c5b6a7988",
        ["P3"] = "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    };

    private static readonly Lazy<PolicySet> Sample = new(() => PolicyLoader.LoadDirectory(Repository.Path("config", "policies"), new PolicyOptions()));

    private static readonly Lazy<List<Case>> Cases = new(() =>
        new DeserializerBuilder().WithNamingConvention(CamelCaseNamingConvention.Instance).Build()
            .Deserialize<List<Case>>(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Policy", "SamplePolicyCases.yaml"))));

    public static TheoryData<string> Names => [.. Cases.Value.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Names))]
    public void TheShippedPolicy_DecidesAsTheTableSays(string name)
    {
        var @case = Cases.Value.Single(c => c.Name == name);

        var decision = PolicyEvaluator.Evaluate(Sample.Value, @case.ToRequest());

        Assert.Equal(@case.Expect == "permit", decision.Permitted);
        Assert.Equal(@case.Rule, decision.Rule);
        Assert.Equal(@case.Matched, decision.Explanation.Matched.Select(m => m.Status == "applied" ? m.Rule : $"{m.Rule} ({m.Status})"));
        Assert.Equal(@case.Expect, decision.Explanation.Result);
        Assert.Equal(@case.Record is null ? "request" : "record", decision.Explanation.Level);
        Assert.Equal(Sample.Value.Version, decision.PolicyVersion);
        Assert.Contains(decision.Rule, decision.Reason, StringComparison.Ordinal);
        Assert.Equal(@case.BreakGlass, decision.BreakGlass);
        if (@case.Note is not null)
        {
            Assert.Contains(@case.Note, decision.Explanation.Notes);
        }

        if (!decision.Permitted)
        {
            return;
        }

        var expected = @case.Obligations ?? [];
        var obligations = decision.Obligations;
        Assert.Equal(expected.GetValueOrDefault("view", "original"), obligations.View == RecordView.Deidentified ? "deidentified" : "original");
        Assert.Equal(expected.GetValueOrDefault("profile"), obligations.DeidentificationProfile);
        Assert.Equal(bool.Parse(expected.GetValueOrDefault("fingerprint", "false")!), obligations.Fingerprint);
        Assert.Equal(int.Parse(expected.GetValueOrDefault("minSet", "1")!, CultureInfo.InvariantCulture), obligations.MinObliviousSet);
        if (expected.TryGetValue("viewBy", out var viewBy))
        {
            Assert.Equal(viewBy, decision.Explanation.Obligations!.ViewBy);
        }

        if (expected.TryGetValue("fingerprintBy", out var fingerprintBy))
        {
            Assert.Equal(fingerprintBy, decision.Explanation.Obligations!.FingerprintBy);
        }

        Assert.Equal(@case.PerRecord, decision.PerRecord);
        Assert.Equal(@case.Origins?.Order(), decision.RecordOrigins?.Order());
    }

    [Fact]
    public void TheTable_HasFiftyCases_AndCoversEveryRuleAndConsentEntryOfTheShippedPolicy()
    {
        var mentioned = Cases.Value.SelectMany(c => c.Matched.Select(m => m.Split(' ')[0]).Append(c.Rule)).ToHashSet();

        Assert.True(Cases.Value.Count >= 50, $"{Cases.Value.Count} cases");
        Assert.Equal(Cases.Value.Count, Cases.Value.Select(c => c.Name).Distinct().Count());
        Assert.All(Sample.Value.Rules, r => Assert.Contains(r.Id, mentioned));
        Assert.Contains(Cases.Value, c => c.Expect == "permit" && c.Matched.Any(m => m.EndsWith("(overridden)", StringComparison.Ordinal)));
        Assert.Contains(Cases.Value, c => c.Expect == "deny" && c.Matched.Contains("consumer-read"));
    }

    // The table's shape, as YamlDotNet reads it.
    private sealed class Case
    {
        public string Name { get; set; } = "";

        public string Subject { get; set; } = "";

        public string Action { get; set; } = "";

        public string? Purpose { get; set; }

        public string? At { get; set; }

        public string? Justification { get; set; }

        public bool Deidentified { get; set; }

        public string? Profile { get; set; }

        public Dictionary<string, string>? Record { get; set; }

        public string Expect { get; set; } = "";

        public string Rule { get; set; } = "";

        public List<string> Matched { get; set; } = [];

        public Dictionary<string, string>? Obligations { get; set; }

        public bool PerRecord { get; set; }

        public List<string>? Origins { get; set; }

        public bool BreakGlass { get; set; }

        public string? Note { get; set; }

        public PolicyRequest ToRequest()
        {
            var (organisation, roleName) = (Subject.Split('/')[0], Subject.Split('/')[1]);
            Assert.True(ProxyRoles.TryParse(roleName, out var role), Subject);
            Assert.True(ProxyActions.TryParse(Action, out var action), Action);
            var purpose = PurposeOfUse.Treatment;
            Assert.True(Purpose is null || PurposesOfUse.TryParse(Purpose, out purpose), Purpose);
            var record = Record is null
                ? null
                : new RecordAttributes(
                    "aaaaaaaaaaaaaaaaaaaaaaaaaa",
                    Record["origin"],
                    Record.TryGetValue("patient", out var patient) ? Patients[patient] : null,
                    Record.GetValueOrDefault("modality"),
                    Record.TryGetValue("studyDate", out var date) ? DateOnly.ParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture) : null);
            return new PolicyRequest(
                new FederationIdentity(organisation, role, "0A"),
                action,
                "GET /test",
                At is null ? DefaultTime : DateTimeOffset.Parse(At, CultureInfo.InvariantCulture),
                new PolicyContext(purpose, Deidentified || Profile is not null, Profile, Justification),
                record);
        }
    }
}
