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
                    At = request.Time.UtcDateTime.ToString("O"),
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

#pragma warning disable IDE1006 // column names as stored
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
