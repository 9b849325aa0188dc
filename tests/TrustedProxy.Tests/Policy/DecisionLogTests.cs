using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.Tests.Policy;

/// <summary>The decision log's queries for the compliance dashboard, on a real SQLite index.</summary>
public sealed class DecisionLogTests : IDisposable
{
    private static readonly DateTimeOffset Noon = new(2025, 3, 14, 12, 0, 0, TimeSpan.Zero);

    private readonly TemporaryDirectory _directory = new();
    private readonly DecisionLog _log;

    public DecisionLogTests() => _log = new DecisionLog(new RecordIndex(_directory.File("proxy.db")));

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Search_WithEachFilter_FindsExactlyTheMatchingDecisions()
    {
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon, requestId: "r1");
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Upload, false, Noon.AddMinutes(1));
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Upload, true, Noon.AddMinutes(2));
        await AppendAsync("Haukeland", ProxyRole.Compliance, ProxyAction.Audit, true, Noon.AddDays(1));

        Assert.Equal(4, (await _log.SearchAsync(new DecisionFilter(), 10)).Total);
        Assert.Equal([2L, 1L], Ids(await _log.SearchAsync(new DecisionFilter { Organisation = "St Olav" }, 10)));
        Assert.Equal([4L], Ids(await _log.SearchAsync(new DecisionFilter { Role = "compliance" }, 10)));
        Assert.Equal([3L, 2L], Ids(await _log.SearchAsync(new DecisionFilter { Action = nameof(ProxyAction.Upload) }, 10)));
        Assert.Equal([2L], Ids(await _log.SearchAsync(new DecisionFilter { Permitted = false }, 10)));
        Assert.Equal([2L], Ids(await _log.SearchAsync(new DecisionFilter { Rule = "default-deny" }, 10)));
        Assert.Equal([1L], Ids(await _log.SearchAsync(new DecisionFilter { RequestId = "r1" }, 10)));
        Assert.Equal([3L], Ids(await _log.SearchAsync(new DecisionFilter { Organisation = "Haukeland", Action = nameof(ProxyAction.Upload), Permitted = true }, 10)));
        Assert.Empty(Ids(await _log.SearchAsync(new DecisionFilter { Organisation = "St Olav' OR '1'='1" }, 10)));
    }

    [Fact]
    public async Task Search_ForAPeriod_IncludesItsStart_AndExcludesItsEnd()
    {
        await AppendAsync("A", ProxyRole.Consumer, ProxyAction.Search, true, Noon.AddTicks(-1));
        await AppendAsync("A", ProxyRole.Consumer, ProxyAction.Search, true, Noon);
        await AppendAsync("A", ProxyRole.Consumer, ProxyAction.Search, true, Noon.AddHours(1).AddTicks(-1));
        await AppendAsync("A", ProxyRole.Consumer, ProxyAction.Search, true, Noon.AddHours(1));

        var page = await _log.SearchAsync(new DecisionFilter { From = Noon, Until = Noon.AddHours(1) }, 10);

        Assert.Equal([3L, 2L], Ids(page));
        Assert.Equal(2, await _log.CountAsync(new DecisionFilter { From = Noon, Until = Noon.AddHours(1) }));
    }

    [Fact]
    public async Task Search_PagesNewestFirst_OlderAndNewerPagesCoverTheMatchesOnce_AndSayWhetherMoreLieBeyond()
    {
        for (var i = 0; i < 7; i++)
        {
            await AppendAsync(i % 2 == 0 ? "Even" : "Odd", ProxyRole.Consumer, ProxyAction.Search, true, Noon.AddMinutes(i));
        }

        var filter = new DecisionFilter { Organisation = "Even" }; // ids 1, 3, 5, 7
        var first = await _log.SearchAsync(filter, 3);
        Assert.Equal([7L, 5L, 3L], Ids(first));
        Assert.Equal((4L, false, true), (first.Total, first.HasNewer, first.HasOlder));

        var older = await _log.SearchAsync(filter, 3, before: 3);
        Assert.Equal([1L], Ids(older));
        Assert.Equal((true, false), (older.HasNewer, older.HasOlder));

        var newer = await _log.SearchAsync(filter, 3, after: 1);
        Assert.Equal([7L, 5L, 3L], Ids(newer));
        Assert.Equal((false, true), (newer.HasNewer, newer.HasOlder));

        var pastTheEnd = await _log.SearchAsync(filter, 3, before: 1);
        Assert.Empty(pastTheEnd.Decisions);
        Assert.Equal((true, false), (pastTheEnd.HasNewer, pastTheEnd.HasOlder));
    }

    [Fact]
    public async Task FilterValues_AreTheDistinctOrganisationsAndRules_Sorted_UpToTheLimit()
    {
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Upload, false, Noon);
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Upload, true, Noon);
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Upload, true, Noon);
        await AppendAsync("Ullevaal", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon);

        var values = await _log.FilterValuesAsync(10);
        Assert.Equal(["Haukeland", "St Olav", "Ullevaal"], values.Organisations);
        Assert.Equal(["consumer-read", "default-deny", "producer-upload"], values.Rules);
        Assert.Equal(["Haukeland", "St Olav"], (await _log.FilterValuesAsync(2)).Organisations);
    }

    [Fact]
    public async Task Summarize_CountsUploads_RetrievalsWithOneEntryPerObliviousTransfer_Denials_AndBreakGlassRequests_PerInstitutionAndPurposeInThePeriod()
    {
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Upload, true, Noon);
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Upload, true, Noon);
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Search, true, Noon);
        await AppendAsync("Haukeland", ProxyRole.Producer, ProxyAction.Delete, false, Noon);
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon);
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Upload, false, Noon);

        // One oblivious transfer: the offer's and the choice's HTTP requests, and the offer entry the endpoint records.
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.RetrieveOblivious, true, Noon, resource: "POST /api/v1/oblivious/offers");
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.RetrieveOblivious, true, Noon, resource: $"{DecisionLog.ObliviousOfferResourcePrefix}abc: 1 of 2 records [h1,h2]");
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.RetrieveOblivious, true, Noon, resource: "POST /api/v1/oblivious/offers/{sessionId}/choice");
        await AppendAsync("St Olav", ProxyRole.Compliance, ProxyAction.Audit, true, Noon);

        // Emergency: one break-glass request (request-level permit and a record-level one under the same id), one plain; research: a record withheld.
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon, requestId: "bg1", purpose: PurposeOfUse.Emergency, breakGlass: true);
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon, requestId: "bg1", purpose: PurposeOfUse.Emergency, breakGlass: true, record: "h9");
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon, requestId: "e2", purpose: PurposeOfUse.Emergency);
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Search, true, Noon, requestId: "r1", purpose: PurposeOfUse.Research);
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Search, false, Noon, requestId: "r1", purpose: PurposeOfUse.Research, record: "h7");

        // Outside the period.
        await AppendAsync("St Olav", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon.AddDays(1));
        await AppendAsync("Ullevaal", ProxyRole.Consumer, ProxyAction.Retrieve, true, Noon.AddDays(-1));

        var rows = await _log.SummarizeAsync(Noon.AddHours(-1), Noon.AddHours(1));

        Assert.Equal(
            [
                new DecisionSummary("Haukeland", "treatment", 2, 0, 1, 0),
                new DecisionSummary("St Olav", "emergency", 0, 2, 0, 1),
                new DecisionSummary("St Olav", "research", 0, 0, 1, 0),
                new DecisionSummary("St Olav", "treatment", 0, 2, 1, 0),
            ],
            rows);
        Assert.Equal(3, (await _log.SummarizeAsync(Noon.AddHours(-1), Noon.AddHours(1), "St Olav")).Count);
        Assert.Empty(await _log.SummarizeAsync(Noon.AddHours(2), Noon.AddHours(3)));
    }

    private static List<long> Ids(DecisionPage page) => page.Decisions.Select(d => d.Id).ToList();

    private Task AppendAsync(
        string organisation, ProxyRole role, ProxyAction action, bool permitted, DateTimeOffset at, string? requestId = null, string? resource = null,
        PurposeOfUse purpose = PurposeOfUse.Treatment, bool breakGlass = false, string? record = null)
    {
        var request = new PolicyRequest(new FederationIdentity(organisation, role, "0A1B"), action, resource ?? $"GET /{action}", at,
            new PolicyContext(purpose, BreakGlassJustification: breakGlass ? "unconscious patient" : null), record is null ? null : new RecordAttributes(record, "Haukeland"));
        var decision = permitted
            ? new PolicyDecision(true, role switch { ProxyRole.Producer => "producer-upload", ProxyRole.Compliance => "compliance-reads-audit", _ => "consumer-read" }, "granted") { BreakGlass = breakGlass }
            : PolicyDecision.Deny("default-deny", "no rule");
        return _log.AppendAsync(request, decision, requestId is null ? null : new RequestMark(requestId, "00"));
    }
}
