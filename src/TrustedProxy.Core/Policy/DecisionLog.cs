using System.Globalization;
using System.Text.Json;
using Dapper;
using TrustedProxy.Records;

namespace TrustedProxy.Policy;

/// <summary>
/// A decision as recorded for compliance officers; with the request's identifier (random; for an
/// oblivious transfer's offer, its session id) and the 64-bit tag (hex) that fingerprints of copies
/// handed out under it carry; the purpose declared, whether break-glass was used and the
/// justification given; the record a record-level decision was about; the policy version that
/// decided and the explanation (which rules matched and why).
/// </summary>
public sealed record DecisionRecord(
    long Id,
    DateTimeOffset At,
    string CertificateSerial,
    string Organisation,
    string Role,
    string Action,
    string Resource,
    bool Permitted,
    string Rule,
    string Reason,
    string? RequestId = null,
    string? RequestTag = null,
    string? Purpose = null,
    bool BreakGlass = false,
    string? Justification = null,
    string? RecordHandle = null,
    string? PolicyVersion = null,
    PolicyExplanation? Explanation = null);

/// <summary>The identifier a request's copies are fingerprinted under, and its tag as the fingerprint carries it.</summary>
public sealed record RequestMark(string RequestId, string RequestTag);

/// <summary>Which decisions to find: every field that is set must match exactly; unset fields match everything.</summary>
public sealed record DecisionFilter
{
    public string? Organisation { get; init; }

    /// <summary>A role name as stored (<see cref="ProxyRoles.Names"/>).</summary>
    public string? Role { get; init; }

    /// <summary>A <see cref="ProxyAction"/> name as stored.</summary>
    public string? Action { get; init; }

    public bool? Permitted { get; init; }

    public string? Rule { get; init; }

    public string? RequestId { get; init; }

    /// <summary>Decided at or after this time.</summary>
    public DateTimeOffset? From { get; init; }

    /// <summary>Decided before this time.</summary>
    public DateTimeOffset? Until { get; init; }
}

/// <summary>One page of a search, newest first, with whether more lie on either side and how many match in all.</summary>
public sealed record DecisionPage(IReadOnlyList<DecisionRecord> Decisions, long Total, bool HasNewer, bool HasOlder);

/// <summary>The values present in the log, for pick lists: organisations and rules, each sorted.</summary>
public sealed record DecisionFilterValues(IReadOnlyList<string> Organisations, IReadOnlyList<string> Rules);

/// <summary>
/// What one institution did in a period for one purpose of use. Null purpose: decisions recorded
/// before the purpose was (index v5 and earlier), or taken before a purpose could be read.
/// </summary>
public sealed record DecisionSummary(string Organisation, string? Purpose, long Uploads, long Retrievals, long Denials, long? BreakGlassUses);

/// <summary>
/// Every decision of the enforcement point, kept in the proxy's database for compliance officers.
/// It holds who, what, when and why; never a patient identifier (records appear by handle). With
/// each, the request's identifier and fingerprint tag, so that a traced copy leads back to its decision.
/// </summary>
internal sealed class DecisionLog(RecordIndex database)
{
    private const string Columns = "id, at, certificate_serial, organisation, role, action, resource, permitted, rule, reason, request_id, request_tag, " +
        "purpose, break_glass, justification, record_handle, policy_version, explanation";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Task AppendAsync(PolicyRequest request, PolicyDecision decision, RequestMark? mark = null) =>
        AppendAsync([(request, decision)], mark);

    /// <summary>Appends decisions in one transaction (a search's record-level denials), all or none.</summary>
    public async Task AppendAsync(IReadOnlyCollection<(PolicyRequest Request, PolicyDecision Decision)> decisions, RequestMark? mark = null)
    {
        if (decisions.Count == 0)
        {
            return;
        }

        await using var connection = database.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        foreach (var (request, decision) in decisions)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO decisions (at, certificate_serial, organisation, role, action, resource, permitted, rule, reason, request_id, request_tag,
                    purpose, break_glass, justification, record_handle, policy_version, explanation)
                VALUES (@At, @Serial, @Organisation, @Role, @Action, @Resource, @Permitted, @Rule, @Reason, @RequestId, @RequestTag,
                    @Purpose, @BreakGlass, @Justification, @RecordHandle, @PolicyVersion, @Explanation)
                """,
                new
                {
                    At = Stored(request.Time),
                    Serial = request.Subject.CertificateSerial,
                    request.Subject.Organisation,
                    Role = ProxyRoles.ToName(request.Subject.Role),
                    Action = request.Action.ToString(),
                    request.Resource,
                    decision.Permitted,
                    decision.Rule,
                    decision.Reason,
                    mark?.RequestId,
                    mark?.RequestTag,
                    Purpose = PurposesOfUse.ToName(request.Context.Purpose),
                    decision.BreakGlass,
                    Justification = request.Context.BreakGlassJustification,
                    RecordHandle = request.Record?.Handle,
                    PolicyVersion = decision.PolicyVersion.Length > 0 ? decision.PolicyVersion : null,
                    Explanation = JsonSerializer.Serialize(decision.Explanation, Json),
                },
                transaction).ConfigureAwait(false);
        }

        await transaction.CommitAsync().ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<DecisionRecord>> ReadAsync(long afterId, int limit)
    {
        await using var connection = database.Open();
        var rows = await connection.QueryAsync<Row>($"SELECT {Columns} FROM decisions WHERE id > @afterId ORDER BY id LIMIT @limit", new { afterId, limit }).ConfigureAwait(false);
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>Permitted decisions whose request carries this fingerprint tag (normally one), oldest first.</summary>
    public async Task<IReadOnlyList<DecisionRecord>> FindByRequestTagAsync(string requestTag)
    {
        await using var connection = database.Open();
        var rows = await connection.QueryAsync<Row>($"SELECT {Columns} FROM decisions WHERE request_tag = @requestTag AND permitted = 1 ORDER BY id", new { requestTag }).ConfigureAwait(false);
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>Every organisation that has a permitted decision, for a trace whose request is not in the log.</summary>
    public async Task<IReadOnlyList<string>> OrganisationsAsync()
    {
        await using var connection = database.Open();
        return (await connection.QueryAsync<string>("SELECT DISTINCT organisation FROM decisions WHERE permitted = 1").ConfigureAwait(false)).ToList();
    }

    /// <summary>Decisions matching <paramref name="filter"/>, newest first: the newest page, or the page just older than <paramref name="before"/> or just newer than <paramref name="after"/> (ids).</summary>
    public async Task<DecisionPage> SearchAsync(DecisionFilter filter, int pageSize, long? before = null, long? after = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var (where, parameters) = Where(filter);
        parameters.Add("pageSize", pageSize);
        parameters.Add("before", before);
        parameters.Add("after", after);
        await using var connection = database.Open();
        var total = await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM decisions WHERE {where}", parameters).ConfigureAwait(false);

        // Keyset paging on the id: a page stays put while new decisions arrive, and costs the same deep in the log.
        List<Row> rows;
        if (after is not null)
        {
            rows = (await connection.QueryAsync<Row>($"SELECT {Columns} FROM decisions WHERE {where} AND id > @after ORDER BY id LIMIT @pageSize", parameters).ConfigureAwait(false)).ToList();
            rows.Reverse();
        }
        else
        {
            var older = before is null ? string.Empty : " AND id < @before";
            rows = (await connection.QueryAsync<Row>($"SELECT {Columns} FROM decisions WHERE {where}{older} ORDER BY id DESC LIMIT @pageSize", parameters).ConfigureAwait(false)).ToList();
        }

        // An empty page past either end still offers the way back.
        parameters.Add("newest", rows.Count > 0 ? rows[0].id : (before ?? long.MaxValue) - 1);
        parameters.Add("oldest", rows.Count > 0 ? rows[^1].id : (after ?? long.MinValue) + 1);
        var hasNewer = await connection.ExecuteScalarAsync<bool>($"SELECT EXISTS (SELECT 1 FROM decisions WHERE {where} AND id > @newest)", parameters).ConfigureAwait(false);
        var hasOlder = await connection.ExecuteScalarAsync<bool>($"SELECT EXISTS (SELECT 1 FROM decisions WHERE {where} AND id < @oldest)", parameters).ConfigureAwait(false);
        return new DecisionPage(rows.Select(r => r.ToRecord()).ToList(), total, hasNewer, hasOlder);
    }

    /// <summary>How many decisions match.</summary>
    public async Task<long> CountAsync(DecisionFilter filter)
    {
        var (where, parameters) = Where(filter);
        await using var connection = database.Open();
        return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM decisions WHERE {where}", parameters).ConfigureAwait(false);
    }

    /// <summary>The organisations and rules in the log (at most <paramref name="limit"/> of each), for pick lists.</summary>
    public async Task<DecisionFilterValues> FilterValuesAsync(int limit)
    {
        await using var connection = database.Open();
        var organisations = await connection.QueryAsync<string>("SELECT DISTINCT organisation FROM decisions ORDER BY organisation LIMIT @limit", new { limit }).ConfigureAwait(false);
        var rules = await connection.QueryAsync<string>("SELECT DISTINCT rule FROM decisions ORDER BY rule LIMIT @limit", new { limit }).ConfigureAwait(false);
        return new DecisionFilterValues(organisations.ToList(), rules.ToList());
    }

    /// <summary>
    /// Per institution (the caller's organisation) and purpose of use, what it did from
    /// <paramref name="from"/> up to <paramref name="until"/>: uploads are permitted Upload requests;
    /// retrievals are permitted Retrieve requests plus oblivious-transfer offers (one per transfer:
    /// the offer entry the transfer endpoint records, not its HTTP requests again); denials are
    /// denied decisions of any action, request- or record-level (a search that withheld three
    /// records counts three); break-glass uses are requests with a break-glass permit.
    /// </summary>
    public async Task<IReadOnlyList<DecisionSummary>> SummarizeAsync(DateTimeOffset from, DateTimeOffset until, string? organisation = null)
    {
        var (where, parameters) = Where(new DecisionFilter { Organisation = organisation, From = from, Until = until });
        await using var connection = database.Open();
        var rows = await connection.QueryAsync<SummaryRow>(
            $"""
            SELECT organisation,
                   purpose,
                   SUM(permitted = 1 AND record_handle IS NULL AND action = 'Upload') AS uploads,
                   SUM(permitted = 1 AND record_handle IS NULL AND (action = 'Retrieve' OR (action = 'RetrieveOblivious' AND resource LIKE '{ObliviousOfferResourcePrefix}%'))) AS retrievals,
                   SUM(permitted = 0) AS denials,
                   COUNT(DISTINCT CASE WHEN permitted = 1 AND break_glass = 1 THEN COALESCE(request_id, CAST(id AS TEXT)) END) AS break_glass_uses
            FROM decisions
            WHERE {where}
            GROUP BY organisation, purpose
            ORDER BY organisation, purpose
            """,
            parameters).ConfigureAwait(false);
        return rows.Select(r => new DecisionSummary(r.organisation, r.purpose, r.uploads, r.retrievals, r.denials, r.break_glass_uses)).ToList();
    }

    /// <summary>How the oblivious-transfer endpoint's offer entries begin (<c>offer &lt;session&gt;: k of N records […]</c>).</summary>
    public const string ObliviousOfferResourcePrefix = "offer ";

    private static string Stored(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>The filter as SQL over fixed column names; every value travels as a parameter.</summary>
    private static (string Where, DynamicParameters Parameters) Where(DecisionFilter filter)
    {
        var clauses = new List<string>();
        var parameters = new DynamicParameters();
        void Equal(string column, object? value)
        {
            if (value is not null)
            {
                clauses.Add($"{column} = @{column}");
                parameters.Add(column, value);
            }
        }

        Equal("organisation", filter.Organisation);
        Equal("role", filter.Role);
        Equal("action", filter.Action);
        Equal("permitted", filter.Permitted);
        Equal("rule", filter.Rule);
        Equal("request_id", filter.RequestId);

        // Stored times share one fixed-width UTC format, so text order is time order.
        if (filter.From is { } from)
        {
            clauses.Add("at >= @from");
            parameters.Add("from", Stored(from));
        }

        if (filter.Until is { } until)
        {
            clauses.Add("at < @until");
            parameters.Add("until", Stored(until));
        }

        return (clauses.Count == 0 ? "1 = 1" : string.Join(" AND ", clauses), parameters);
    }

#pragma warning disable IDE1006 // column names as stored
    private sealed class SummaryRow
    {
        public string organisation { get; set; } = "";
        public string? purpose { get; set; }
        public long uploads { get; set; }
        public long retrievals { get; set; }
        public long denials { get; set; }
        public long? break_glass_uses { get; set; }
    }

    private sealed class Row
    {
        public long id { get; set; }
        public string at { get; set; } = "";
        public string certificate_serial { get; set; } = "";
        public string organisation { get; set; } = "";
        public string role { get; set; } = "";
        public string action { get; set; } = "";
        public string resource { get; set; } = "";
        public bool permitted { get; set; }
        public string rule { get; set; } = "";
        public string reason { get; set; } = "";
        public string? request_id { get; set; }
        public string? request_tag { get; set; }
        public string? purpose { get; set; }
        public bool break_glass { get; set; }
        public string? justification { get; set; }
        public string? record_handle { get; set; }
        public string? policy_version { get; set; }
        public string? explanation { get; set; }

        public DecisionRecord ToRecord() => new(
            id, DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture), certificate_serial, organisation, role, action, resource,
            permitted, rule, reason, request_id, request_tag, purpose, break_glass, justification, record_handle, policy_version,
            explanation is null ? null : JsonSerializer.Deserialize<PolicyExplanation>(explanation, Json));
    }
#pragma warning restore IDE1006
}
