using System.Globalization;
using TrustedProxy.Policy;

namespace TrustedProxy.Tests.Policy;

public sealed class PolicyEvaluatorTests
{
    private static readonly FederationIdentity Consumer = new("Haukeland", ProxyRole.Consumer, "0A");

    private static PolicySet Set(string rules) => PolicyLoader.Load([new PolicyFile("p.yaml", "version: 1\nrules:\n" + rules)]);

    private static PolicyRequest Read(RecordAttributes? record = null, PurposeOfUse purpose = PurposeOfUse.Treatment, string? justification = null) =>
        new(Consumer, ProxyAction.Retrieve, "GET /x", DateTimeOffset.Parse("2025-03-12T10:00:00Z", CultureInfo.InvariantCulture), new PolicyContext(purpose, BreakGlassJustification: justification), record);

    [Fact]
    public void WithAThousandGeneratedRules_TheIndexFindsEveryRuleThatMatches_AsAFullScanWould()
    {
        var set = PolicyLoader.Load([new PolicyFile("g.yaml", PolicyGenerator.Yaml(1000, 200, 30, seed: 3))]);
        var random = new Random(5);
        var decided = new HashSet<bool>();
        for (var i = 0; i < 3000; i++)
        {
            var record = random.Next(3) == 0 ? null : new RecordAttributes("h", PolicyGenerator.Organisation(random.Next(30)), PolicyGenerator.Pseudonym(random.Next(400)),
                PolicyGenerator.Modalities[random.Next(PolicyGenerator.Modalities.Length)], new DateOnly(2025, 1, 1).AddDays(-random.Next(100)));
            var request = new PolicyRequest(
                new FederationIdentity(PolicyGenerator.Organisation(random.Next(30)), (ProxyRole)random.Next(4), "0A"),
                (ProxyAction)random.Next(8), "GET /x", new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).AddHours(random.Next(24 * 7)),
                new PolicyContext((PurposeOfUse)random.Next(3), BreakGlassJustification: random.Next(2) == 0 ? "why" : null), record);

            var decision = PolicyEvaluator.Evaluate(set, request);

            // Consent entries are about one record each: before a record is known they are not listed.
            var scanned = set.Rules.Where(r => r.Evaluate(request).Match != Match.No && (record is not null || r.Kind != RuleKind.Consent))
                .Where(r => !(r.BreakGlass && request.Context.BreakGlassJustification is null))
                .Select(r => r.Id).Order();
            Assert.Equal(scanned, decision.Explanation.Matched.Select(m => m.Rule).Order());
            decided.Add(decision.Permitted);
        }

        Assert.Equal(2, decided.Count);
    }

    [Fact]
    public void APermitOverridesOnlyTheDeniesItNames()
    {
        var set = Set("""
              - id: read
                effect: permit
              - id: named
                effect: deny
                record: {modalities: [MG]}
              - id: unnamed
                effect: deny
                record: {modalities: [MG]}
                purposes: [research]
              - id: emergency
                effect: permit
                purposes: [treatment, research]
                overrides: [named]
            """);
        var mammogram = new RecordAttributes("h", "St Olav", null, "MG");

        Assert.Equal(("emergency", true), (PolicyEvaluator.Evaluate(set, Read(mammogram)).Rule, PolicyEvaluator.Evaluate(set, Read(mammogram)).Permitted));
        var research = PolicyEvaluator.Evaluate(set, Read(mammogram, PurposeOfUse.Research));
        Assert.False(research.Permitted);
        Assert.Equal("unnamed", research.Rule);
        Assert.Contains(research.Explanation.Matched, m => m is { Rule: "named", Status: "overridden", Detail: "overridden by emergency" });
    }

    [Fact]
    public void BeforeTheRecordIsKnown_RecordDeniesWait_AndRecordPermitsMakeTheRequestPossible()
    {
        var set = Set("""
              - id: own
                effect: permit
                record: {origin: own}
              - id: listed
                effect: permit
                record: {origin: [St Olav]}
              - id: no-mg
                effect: deny
                record: {modalities: [MG]}
            """);

        var request = PolicyEvaluator.Evaluate(set, Read());
        var theirs = PolicyEvaluator.Evaluate(set, Read(new RecordAttributes("h", "Ullevaal", null, "CT")));
        var mammogram = PolicyEvaluator.Evaluate(set, Read(new RecordAttributes("h", "St Olav", null, "MG")));

        Assert.True(request is { Permitted: true, PerRecord: true, Rule: "own" });
        Assert.Equal(["Haukeland", "St Olav"], request.RecordOrigins!.Order());
        Assert.All(request.Explanation.Matched, m => Assert.Equal("per-record", m.Status));
        Assert.Equal((false, PolicyDecision.DefaultDeny), (theirs.Permitted, theirs.Rule));
        Assert.Equal((false, "no-mg"), (mammogram.Permitted, mammogram.Rule));
    }

    [Fact]
    public void APermitNeedsItsRecordAttributes_ADenyIsAssumedWithoutThem()
    {
        var set = Set("""
              - id: ct-only
                effect: permit
                record: {modalities: [CT]}
              - id: any
                effect: permit
              - id: old-studies-held
                effect: deny
                record: {studyDate: {to: "2000-12-31"}}
            """);

        var decision = PolicyEvaluator.Evaluate(set, Read(new RecordAttributes("h", "St Olav")));

        Assert.False(decision.Permitted);
        Assert.Equal("old-studies-held", decision.Rule);
        Assert.Equal(["ct-only:not-applied", "any:applied", "old-studies-held:assumed"], decision.Explanation.Matched.Select(m => $"{m.Rule}:{m.Status}"));
        Assert.Equal("the record has no study date", decision.Explanation.Matched[2].Detail);
    }

    [Fact]
    public void AnActionOrRoleNoRuleKnows_IsDeniedByDefault()
    {
        var set = Set("  - id: any\n    effect: permit\n    actions: [search]\n");

        Assert.Equal(PolicyDecision.DefaultDeny, PolicyEvaluator.Evaluate(set, Read() with { Action = (ProxyAction)999 }).Rule);
        Assert.Equal(PolicyDecision.DefaultDeny, PolicyEvaluator.Evaluate(set, Read() with { Subject = Consumer with { Role = (ProxyRole)42 } }).Rule);
    }
}
