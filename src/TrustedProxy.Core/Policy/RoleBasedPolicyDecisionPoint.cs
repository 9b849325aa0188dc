namespace TrustedProxy.Policy;

/// <summary>
/// Decides by role alone: producers upload (and see what their own organisation uploaded),
/// consumers search and retrieve, administrators manage the CA and delete records, compliance
/// officers read audit data; everyone may discover how to talk to the proxy. Anything else is denied.
/// Records read for research, or when the caller asks for it, come in the de-identified view;
/// for treatment and emergencies, as uploaded. Every copy a consumer retrieves carries a fingerprint
/// (consumer, request, time) unless its organisation is configured to receive unmarked originals;
/// producers reading their own uploads get them unmarked (they hold the originals already).
/// </summary>
internal sealed class RoleBasedPolicyDecisionPoint(PolicyOptions? options = null) : IPolicyDecisionPoint
{
    private readonly PolicyOptions _options = options ?? new PolicyOptions();

    private static readonly Dictionary<(ProxyRole, ProxyAction), (string Rule, RecordScope Scope)> Grants = new()
    {
        [(ProxyRole.Producer, ProxyAction.Upload)] = ("producer-upload", RecordScope.OwnOrganisation),
        [(ProxyRole.Producer, ProxyAction.Search)] = ("producer-sees-own-uploads", RecordScope.OwnOrganisation),
        [(ProxyRole.Producer, ProxyAction.Retrieve)] = ("producer-sees-own-uploads", RecordScope.OwnOrganisation),
        [(ProxyRole.Consumer, ProxyAction.Search)] = ("consumer-read", RecordScope.All),
        [(ProxyRole.Consumer, ProxyAction.Retrieve)] = ("consumer-read", RecordScope.All),
        [(ProxyRole.Consumer, ProxyAction.RetrieveOblivious)] = ("consumer-read", RecordScope.All),
        [(ProxyRole.Admin, ProxyAction.Administer)] = ("admin-manages-ca", RecordScope.None),
        [(ProxyRole.Admin, ProxyAction.Delete)] = ("admin-deletes", RecordScope.All),
        [(ProxyRole.Compliance, ProxyAction.Audit)] = ("compliance-reads-audit", RecordScope.None),
    };

    public PolicyDecision Decide(PolicyRequest request)
    {
        if (request.Action == ProxyAction.Discover)
        {
            return new PolicyDecision(true, "members-discover", "every federation member may read health, the API description and the CA's public material", RecordScope.None);
        }

        var role = ProxyRoles.ToName(request.Subject.Role);
        if (Grants.TryGetValue((request.Subject.Role, request.Action), out var grant))
        {
            var context = request.Context;
            var deidentify = request.Action is ProxyAction.Search or ProxyAction.Retrieve or ProxyAction.RetrieveOblivious &&
                (context.Purpose == PurposeOfUse.Research || context.DeidentifiedViewRequested);
            var fingerprint = request.Subject.Role == ProxyRole.Consumer && request.Action is ProxyAction.Retrieve or ProxyAction.RetrieveOblivious &&
                !_options.AllowsUnmarked(request.Subject.Organisation);
            var obligations = new PolicyObligations(deidentify ? RecordView.Deidentified : RecordView.Original, deidentify ? context.RequestedProfile : null, fingerprint);
            var view = deidentify ? $", de-identified view ({(context.Purpose == PurposeOfUse.Research ? "purpose research" : "requested")})" : string.Empty;
            var mark = fingerprint ? ", fingerprinted copies" : string.Empty;
            return new PolicyDecision(true, grant.Rule, $"role '{role}' is granted '{request.Action}'{view}{mark}", grant.Scope, obligations);
        }

        return PolicyDecision.Deny("default-deny", $"no rule grants role '{role}' the action '{request.Action}'");
    }
}
