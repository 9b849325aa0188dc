using TrustedProxy.Policy;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// Reads the circumstances a request declares: the purpose of use (header <c>Purpose-Of-Use</c>:
/// treatment, research or emergency; treatment when absent), the view it asks for (query
/// <c>view=original|deidentified</c>, and <c>profile=&lt;name&gt;</c> for the de-identification profile)
/// and a break-glass justification (header <c>Break-Glass-Justification</c>: printable ASCII, bounded).
/// </summary>
internal static class RequestContext
{
    public const string PurposeHeader = "Purpose-Of-Use";

    public const string JustificationHeader = "Break-Glass-Justification";

    public static bool TryRead(HttpRequest request, int maxJustificationLength, out PolicyContext context, out string? error)
    {
        context = PolicyContext.Default;
        error = null;
        var purpose = PurposeOfUse.Treatment;
        var declared = request.Headers[PurposeHeader];
        if (declared.Count > 1 || (declared.Count == 1 && !PurposesOfUse.TryParse(declared[0], out purpose)))
        {
            error = $"{PurposeHeader} must be one of treatment, research or emergency";
            return false;
        }

        var view = request.Query["view"].ToString();
        if (view.Length > 0 && view is not ("original" or "deidentified"))
        {
            error = "view must be original or deidentified";
            return false;
        }

        string? justification = null;
        var given = request.Headers[JustificationHeader];
        if (given.Count > 0)
        {
            // The text is stored with the decision, never logged; it is checked, not echoed.
            justification = given.Count == 1 ? given[0]?.Trim() : null;
            if (string.IsNullOrEmpty(justification) || justification.Length > maxJustificationLength || !justification.All(c => c is >= ' ' and <= '~'))
            {
                error = $"{JustificationHeader} must be one line of 1 to {maxJustificationLength} printable ASCII characters";
                return false;
            }
        }

        var profile = request.Query["profile"].ToString();
        context = new PolicyContext(purpose, view == "deidentified" || profile.Length > 0, profile.Length > 0 ? profile : null, justification);
        return true;
    }
}
