using Dapper;
using TrustedProxy.Records;

namespace TrustedProxy.Policy;

/// <summary>A decision as recorded for compliance officers.</summary>
public sealed record DecisionRecord(long Id, DateTimeOffset At, string CertificateSerial, string Organisation, string Role, string Action, string Resource, bool Permitted, string Rule, string Reason);

/// <summary>
/// Every decision of the enforcement point, kept in the proxy's database for compliance officers.
/// It holds who, what, when and why; never a patient identifier.
/// </summary>
internal sealed class DecisionLog(RecordIndex database)
{
    public async Task AppendAsync(PolicyRequest request, PolicyDecision decision)
    {
        await using var connection = database.Open();
        await connection.ExecuteAsync(
            """
            INSERT INTO decisions (at, certificate_serial, organisation, role, action, resource, permitted, rule, reason)
            VALUES (@At, @Serial, @Organisation, @Role, @Action, @Resource, @Permitted, @Rule, @Reason)
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
            }).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<DecisionRecord>> ReadAsync(long afterId, int limit)
    {
        await using var connection = database.Open();
        var rows = await connection.QueryAsync<(long Id, string At, string Serial, string Organisation, string Role, string Action, string Resource, bool Permitted, string Rule, string Reason)>(
            "SELECT id, at, certificate_serial, organisation, role, action, resource, permitted, rule, reason FROM decisions WHERE id > @afterId ORDER BY id LIMIT @limit",
            new { afterId, limit }).ConfigureAwait(false);
        return rows.Select(r => new DecisionRecord(r.Id, DateTimeOffset.Parse(r.At, System.Globalization.CultureInfo.InvariantCulture), r.Serial, r.Organisation, r.Role, r.Action, r.Resource, r.Permitted, r.Rule, r.Reason)).ToList();
    }
}
