using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// The policy for compliance officers: the files in force and their version, the history of
/// versions (each with its files, for diffs), and what-if evaluation of a request without performing it.
/// </summary>
internal static class PolicyEndpoints
{
    public static IEndpointRouteBuilder MapPolicy(this IEndpointRouteBuilder app)
    {
        var policy = app.MapGroup("/api/v1/policy").WithTags("Policy");
        policy.MapGet("/", (PolicyStore store) =>
            {
                var set = store.Current;
                var version = store.CurrentVersion with { Files = set.Files.Select(f => new PolicyFileVersion(f.Name, f.Sha256, f.Content)).ToList() };
                var rejection = store.LastRejection is { } r
                    ? new PolicyRejectionInfo(r.At, r.Errors.Select(e => new PolicyProblem(e.File, e.Line, e.Column, e.Message)).ToList())
                    : null;
                return TypedResults.Ok(new PolicyInForce(ToInfo(version), set.RuleCount, set.ConsentCount, rejection));
            })
            .RequiresAction(ProxyAction.Audit)
            .WithSummary("The policy in force: its version, files and the last refused change");
        policy.MapGet("/history", async (long? before, int? limit, PolicyHistory history) =>
                limit is < 1 or > 1000
                    ? Problem.Result(ProblemTypes.InvalidQuery, "limit must be from 1 to 1000")
                    : TypedResults.Ok((await history.ListAsync(before, limit ?? 100)).Select(ToInfo).ToList()))
            .RequiresAction(ProxyAction.Audit)
            .WithSummary("Policy versions put in force, newest first (files without their text)");
        policy.MapGet("/history/{id:long}", async (long id, PolicyHistory history) =>
                await history.FindAsync(id) is { } version
                    ? TypedResults.Ok(ToInfo(version))
                    : Problem.Result(ProblemTypes.PolicyVersionNotFound, $"no policy version {id}"))
            .RequiresAction(ProxyAction.Audit)
            .WithSummary("One policy version with its files' text");
        policy.MapPost("/what-if", WhatIfAsync)
            .RequiresAction(ProxyAction.Audit)
            .Accepts<WhatIfRequest>("application/json")
            .Produces<WhatIfResult>()
            .WithSummary("Evaluate a request against the policy in force without performing it")
            .WithDescription("Organisation, role, action and purpose as policy files spell them; 'record' names a stored record by handle or gives its attributes. Nothing is performed; the what-if itself is recorded as an audit decision.");
        return app;
    }

    private static async Task<IResult> WhatIfAsync(WhatIfRequest? request, IPolicyDecisionPoint decisionPoint, RecordIndex index, TimeProvider time)
    {
        if (request is null)
        {
            return Problem.Result(ProblemTypes.BadRequest, "send a what-if request as JSON: organisation, role, action, and optionally purpose, at, record");
        }

        var (result, problem) = await WhatIf.EvaluateAsync(request, decisionPoint, index, time.GetUtcNow());
        return problem ?? TypedResults.Ok(result);
    }

    private static PolicyVersionInfo ToInfo(PolicyVersion version) =>
        new(version.Id, version.Hash, version.LoadedAt, version.Files.Select(f => new PolicyFileInfo(f.Name, f.Sha256, f.Content)).ToList());
}

/// <summary>Turns a what-if request into a policy request, and a decision into its answer; shared by the API and <c>tproxy policy test</c>.</summary>
internal static class WhatIf
{
    public const int MaxTextLength = 256;

    /// <summary>
    /// Evaluates a what-if request as the API and the dashboard's form do: a record named by handle
    /// is looked up in the index; nothing is performed. Either the result or the problem to answer with.
    /// </summary>
    public static async Task<(WhatIfResult? Result, IResult? Problem)> EvaluateAsync(WhatIfRequest request, IPolicyDecisionPoint decisionPoint, RecordIndex index, DateTimeOffset now)
    {
        RecordAttributes? stored = null;
        if (request.Record?.Handle is { } handle)
        {
            if (!RecordHandle.IsWellFormed(handle) || await index.FindAsync(handle) is not { IsAvailable: true } entry)
            {
                return (null, Problem.Result(ProblemTypes.RecordNotFound, RecordHandle.IsWellFormed(handle) ? $"no record {handle} exists" : "that is not a record handle"));
            }

            stored = entry.Attributes;
        }

        if (!TryCreate(request, stored, now, out var question, out var error))
        {
            return (null, Problem.Result(ProblemTypes.BadRequest, error!));
        }

        return (ToResult(decisionPoint.Decide(question!)), null);
    }

    public static bool TryCreate(WhatIfRequest request, RecordAttributes? stored, DateTimeOffset now, out PolicyRequest? question, out string? error)
    {
        question = null;
        error = Check(request, stored);
        if (error is not null)
        {
            return false;
        }

        ProxyRoles.TryParse(request.Role, out var role);
        ProxyActions.TryParse(request.Action, out var action);
        var purpose = PurposeOfUse.Treatment;
        if (request.Purpose is not null)
        {
            PurposesOfUse.TryParse(request.Purpose, out purpose);
        }

        var record = stored ?? (request.Record is { } given
            ? new RecordAttributes("(what-if)", given.OriginOrganisation!, given.PatientPseudonym, given.Modality, given.StudyDate)
            : null);
        var context = new PolicyContext(purpose, request.Deidentified || request.Profile is not null, request.Profile, request.BreakGlassJustification);
        question = new PolicyRequest(new FederationIdentity(request.Organisation, role, "what-if"), action, "what-if", request.At ?? now, context, record);
        return true;
    }

    public static WhatIfResult ToResult(PolicyDecision decision)
    {
        var explanation = decision.Explanation;
        var obligations = decision.Permitted
            ? new WhatIfObligations(decision.Obligations.View == RecordView.Deidentified ? "deidentified" : "original", decision.Obligations.DeidentificationProfile, decision.Obligations.Fingerprint, decision.Obligations.MinObliviousSet)
            : null;
        return new WhatIfResult(
            decision.Permitted, decision.Rule, decision.Reason, explanation.Level, decision.BreakGlass, decision.PolicyVersion, obligations,
            explanation.Matched.Select(m => new WhatIfMatchedRule(m.Rule, m.Kind, m.Effect, m.Source, m.Status, m.Detail)).ToList(),
            explanation.Notes);
    }

    private static string? Check(WhatIfRequest request, RecordAttributes? stored)
    {
        if (string.IsNullOrWhiteSpace(request.Organisation) || request.Organisation.Length > MaxTextLength)
        {
            return $"organisation is required (up to {MaxTextLength} characters)";
        }

        if (!ProxyRoles.TryParse(request.Role, out _))
        {
            return $"role must be one of: {string.Join(", ", ProxyRoles.Names)}";
        }

        if (!ProxyActions.TryParse(request.Action, out _))
        {
            return $"action must be one of: {string.Join(", ", ProxyActions.Names)}";
        }

        if (request.Purpose is not null && !PurposesOfUse.TryParse(request.Purpose, out _))
        {
            return $"purpose must be one of: {string.Join(", ", PurposesOfUse.Names)}";
        }

        if (request.BreakGlassJustification is { } justification && (justification.Length is 0 or > MaxTextLength * 16 || !justification.All(c => c is >= ' ' and <= '~')))
        {
            return "breakGlassJustification must be one line of printable ASCII";
        }

        if (request.Profile is { Length: 0 or > MaxTextLength })
        {
            return "profile must be a profile name";
        }

        if (request.Record is { } record)
        {
            var attributes = record.OriginOrganisation is not null || record.PatientPseudonym is not null || record.Modality is not null || record.StudyDate is not null;
            if (record.Handle is not null)
            {
                if (attributes)
                {
                    return "record: give a handle or attributes, not both";
                }

                if (stored is null)
                {
                    return "record.handle names a stored record, which only the proxy can look up";
                }
            }
            else if (string.IsNullOrWhiteSpace(record.OriginOrganisation) || record.OriginOrganisation.Length > MaxTextLength)
            {
                return "record.originOrganisation is required when the record is given by its attributes";
            }
            else if (record.Modality is { Length: 0 or > 16 } || record.PatientPseudonym is { Length: 0 or > MaxTextLength })
            {
                return "record.modality and record.patientPseudonym must be short codes";
            }
        }

        return null;
    }
}
