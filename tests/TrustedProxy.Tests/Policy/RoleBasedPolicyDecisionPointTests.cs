using TrustedProxy.Policy;

namespace TrustedProxy.Tests.Policy;

public sealed class RoleBasedPolicyDecisionPointTests
{
    private readonly RoleBasedPolicyDecisionPoint _pdp = new();

    public static TheoryData<ProxyRole, ProxyAction, bool, RecordScope> Table => new()
    {
        { ProxyRole.Producer, ProxyAction.Upload, true, RecordScope.OwnOrganisation },
        { ProxyRole.Producer, ProxyAction.Search, true, RecordScope.OwnOrganisation },
        { ProxyRole.Producer, ProxyAction.Retrieve, true, RecordScope.OwnOrganisation },
        { ProxyRole.Producer, ProxyAction.Delete, false, RecordScope.None },
        { ProxyRole.Producer, ProxyAction.Administer, false, RecordScope.None },
        { ProxyRole.Producer, ProxyAction.Audit, false, RecordScope.None },
        { ProxyRole.Consumer, ProxyAction.Upload, false, RecordScope.None },
        { ProxyRole.Consumer, ProxyAction.Search, true, RecordScope.All },
        { ProxyRole.Consumer, ProxyAction.Retrieve, true, RecordScope.All },
        { ProxyRole.Consumer, ProxyAction.Delete, false, RecordScope.None },
        { ProxyRole.Consumer, ProxyAction.Administer, false, RecordScope.None },
        { ProxyRole.Compliance, ProxyAction.Audit, true, RecordScope.None },
        { ProxyRole.Compliance, ProxyAction.Retrieve, false, RecordScope.None },
        { ProxyRole.Compliance, ProxyAction.Upload, false, RecordScope.None },
        { ProxyRole.Admin, ProxyAction.Administer, true, RecordScope.None },
        { ProxyRole.Admin, ProxyAction.Delete, true, RecordScope.All },
        { ProxyRole.Admin, ProxyAction.Retrieve, false, RecordScope.None },
        { ProxyRole.Admin, ProxyAction.Upload, false, RecordScope.None },
        { ProxyRole.Admin, ProxyAction.Discover, true, RecordScope.None },
        { ProxyRole.Consumer, ProxyAction.Discover, true, RecordScope.None },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Decides_ByRole_WithAReasonAndScope(ProxyRole role, ProxyAction action, bool permitted, RecordScope scope)
    {
        var decision = _pdp.Decide(new PolicyRequest(new FederationIdentity("Haukeland", role, "01"), action, "GET /x", DateTimeOffset.UtcNow));

        Assert.Equal(permitted, decision.Permitted);
        Assert.Equal(scope, decision.Scope);
        Assert.False(string.IsNullOrWhiteSpace(decision.Reason));
        Assert.Equal(permitted ? decision.Rule : "default-deny", decision.Rule);
    }

    [Fact]
    public void AnActionNoRuleKnows_IsDenied()
    {
        var decision = _pdp.Decide(new PolicyRequest(new FederationIdentity("Haukeland", ProxyRole.Admin, "01"), (ProxyAction)999, "GET /x", DateTimeOffset.UtcNow));

        Assert.False(decision.Permitted);
    }

    [Theory]
    [InlineData(ProxyRole.Consumer, ProxyAction.Retrieve, true)]
    [InlineData(ProxyRole.Consumer, ProxyAction.RetrieveOblivious, true)]
    [InlineData(ProxyRole.Consumer, ProxyAction.Search, false)]
    [InlineData(ProxyRole.Producer, ProxyAction.Retrieve, false)]
    public void AConsumersCopies_AreFingerprinted_ByDefault(ProxyRole role, ProxyAction action, bool fingerprinted)
    {
        var decision = _pdp.Decide(new PolicyRequest(new FederationIdentity("Haukeland", role, "01"), action, "GET /x", DateTimeOffset.UtcNow));

        Assert.Equal(fingerprinted, decision.Obligations.Fingerprint);
        Assert.Equal(fingerprinted, decision.Reason.Contains("fingerprinted", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Haukeland", false)]
    [InlineData("St Olav", true)]
    [InlineData("*", false)]
    public void AnOrganisationAllowedUnmarkedOriginals_GetsThem(string allowed, bool fingerprinted)
    {
        var pdp = new RoleBasedPolicyDecisionPoint(new PolicyOptions { UnmarkedOriginals = [allowed] });

        var decision = pdp.Decide(new PolicyRequest(new FederationIdentity("Haukeland", ProxyRole.Consumer, "01"), ProxyAction.Retrieve, "GET /x", DateTimeOffset.UtcNow, new PolicyContext(PurposeOfUse.Research)));

        Assert.Equal(fingerprinted, decision.Obligations.Fingerprint);
        Assert.Equal(RecordView.Deidentified, decision.Obligations.View);
    }
}
