using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Records;

/// <summary>A record a request may touch, with the record-level decision whose obligations apply to it.</summary>
internal sealed record VisibleRecord(RecordEntry Entry, PolicyDecision Decision);

/// <summary>
/// The records of a search the policy lets through, in index order; the first denial met (for a
/// request whose every match is withheld); and whether the search stopped at
/// TrustedProxy:Policy:MaxRecordsExamined before it had enough.
/// </summary>
internal sealed record VisibleRecords(IReadOnlyList<VisibleRecord> Records, PolicyDecision? FirstDenial, bool Truncated, int Examined)
{
    /// <summary>The Warning header value for a truncated search.</summary>
    public string TruncationWarning => $"299 TrustedProxy \"the search stopped after examining {Examined} records (TrustedProxy:Policy:MaxRecordsExamined); narrow it\"";
}

/// <summary>
/// How the endpoints reach records, always through a record-level decision: by handle (absent:
/// 404; withheld: 403 naming the rule), or by a search whose results are filtered record by record
/// (offset and limit count the records let through).
/// </summary>
internal static class RecordAccess
{
    /// <summary>The record and its decision, or the refusal to answer with.</summary>
    public static async Task<(VisibleRecord? Record, IResult? Refusal)> FindAsync(string handle, HttpContext context, RecordIndex index)
    {
        if (!RecordHandle.IsWellFormed(handle) || await index.FindAsync(handle) is not { IsAvailable: true } entry)
        {
            return (null, NotFound(handle));
        }

        var decision = await context.Proxy().AuthorizeAsync(entry, context.RequestAborted);
        return decision.Permitted ? (new VisibleRecord(entry, decision), null) : (null, Forbidden(decision));
    }

    /// <summary>
    /// Runs <paramref name="search"/> page by page from the start, deciding each record, until
    /// <c>query.Offset</c> records let through are skipped and <c>query.Limit</c> are found, the index
    /// has no more, or <paramref name="maxExamined"/> entries were examined.
    /// </summary>
    public static async Task<VisibleRecords> SearchAsync(
        ProxyRequestFeature feature, RecordQuery query, Func<RecordQuery, Task<IReadOnlyList<RecordEntry>>> search, int maxExamined, CancellationToken cancellationToken)
    {
        var wanted = query.Limit;
        var skip = query.Offset;
        var batch = (int)Math.Clamp((long)skip + wanted, 16, 1000);
        var found = new List<VisibleRecord>();
        PolicyDecision? firstDenial = null;
        var examined = 0;
        var exhausted = false;
        while (found.Count < wanted && examined < maxExamined)
        {
            var take = Math.Min(batch, maxExamined - examined);
            var rows = await search(query with { Offset = examined, Limit = take });
            examined += rows.Count;
            var decisions = await feature.AuthorizeAsync(rows, cancellationToken);
            for (var i = 0; i < rows.Count; i++)
            {
                if (!decisions[i].Permitted)
                {
                    firstDenial ??= decisions[i];
                }
                else if (skip > 0)
                {
                    skip--;
                }
                else if (found.Count < wanted)
                {
                    found.Add(new VisibleRecord(rows[i], decisions[i]));
                }
            }

            if (rows.Count < take)
            {
                exhausted = true;
                break;
            }
        }

        return new VisibleRecords(found, firstDenial, !exhausted && found.Count < wanted, examined);
    }

    public static IResult Forbidden(PolicyDecision decision) =>
        Problem.Result(ProblemTypes.Forbidden, decision.Reason, ProxyRequestFeature.RuleExtension(decision));

    public static IResult NotFound(string handle) =>
        Problem.Result(ProblemTypes.RecordNotFound, RecordHandle.IsWellFormed(handle) ? $"no record {handle} exists" : "that is not a record handle");
}
