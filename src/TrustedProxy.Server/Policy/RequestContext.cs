using TrustedProxy.Policy;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// Reads the circumstances a request declares: the purpose of use (header <c>Purpose-Of-Use</c>:
/// treatment, research or emergency; treatment when absent) and the view it asks for (query
/// <c>view=original|deidentified</c>, and <c>profile=&lt;name&gt;</c> for the de-identification profile).
/// </summary>
internal static class RequestContext
{
    public const string PurposeHeader = "Purpose-Of-Use";

    public static bool TryRead(HttpRequest request, out PolicyContext context, out string? error)
    {
        context = PolicyContext.Default;
        error = null;
        var purpose = PurposeOfUse.Treatment;
        var declared = request.Headers[PurposeHeader].ToString();
        if (declared.Length > 0 && !Enum.TryParse(declared, ignoreCase: true, out purpose))
        {
            error = $"{PurposeHeader} must be treatment, research or emergency";
            return false;
        }

        var view = request.Query["view"].ToString();
        if (view.Length > 0 && view is not ("original" or "deidentified"))
        {
            error = "view must be original or deidentified";
            return false;
        }

        var profile = request.Query["profile"].ToString();
        context = new PolicyContext(purpose, view == "deidentified" || profile.Length > 0, profile.Length > 0 ? profile : null);
        return true;
    }
}
