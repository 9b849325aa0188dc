using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;

namespace TrustedProxy.Tests.Pseudonymization;

public sealed class IdentifierPseudonymizerTests
{
    [Fact]
    public void ThePseudonym_IsStableUnderOneKey_DiffersUnderAnother_AndHidesTheId()
    {
        var pseudonymizer = new IdentifierPseudonymizer(new byte[32]);
        var other = new IdentifierPseudonymizer(Enumerable.Repeat((byte)1, 32).ToArray());

        var scope = PatientScope.OfOrganisation("Haukeland");
        var pseudonym = pseudonymizer.Patient("1CT1", scope);

        Assert.Equal(pseudonym, pseudonymizer.Patient(" 1CT1 ", scope));
        Assert.NotEqual(pseudonym, other.Patient("1CT1", scope));
        Assert.NotEqual(pseudonym, pseudonymizer.Patient("1CT2", scope));
        Assert.Matches("^[0-9a-f]{32}$", pseudonym);
        Assert.DoesNotContain("1CT1", pseudonym, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void TheSamePatientId_InTwoScopes_IsTwoPatients_ButOneIdToMatch()
    {
        var pseudonymizer = new IdentifierPseudonymizer(new byte[32]);

        var haukeland = pseudonymizer.Patient("12345", PatientScope.OfOrganisation("Haukeland"));
        var stOlav = pseudonymizer.Patient("12345", PatientScope.OfOrganisation("St Olav"));

        Assert.NotEqual(haukeland, stOlav);
        Assert.Equal(haukeland, pseudonymizer.Patient("12345", PatientScope.OfOrganisation("Haukeland")));
        Assert.NotEqual(pseudonymizer.Patient("12345", PatientScope.OfIssuer("Haukeland")), haukeland);
        Assert.DoesNotContain(pseudonymizer.PatientIdMatch("12345"), new[] { haukeland, stOlav });
    }

    [Fact]
    public void WithLinkage_ThePatientIdAloneIsThePatient_AsIndexesBeforeScopingHadIt()
    {
        var linked = new IdentifierPseudonymizer(new byte[32], linkPatientsAcrossOrganisations: true);
        var scoped = new IdentifierPseudonymizer(new byte[32]);

        Assert.Equal(linked.Patient("12345", PatientScope.OfOrganisation("Haukeland")), linked.Patient("12345", PatientScope.OfIssuer("St Olav MRN")));
        Assert.Equal(scoped.PatientIdMatch("12345"), linked.Patient("12345", PatientScope.OfOrganisation("Haukeland")));
        Assert.Matches("^[0-9a-f]{32}$", linked.Patient("12345", PatientScope.OfOrganisation("Haukeland")));
    }

    [Fact]
    public void RecordHandles_AreRandomBase32_AndRecognised()
    {
        var handles = Enumerable.Range(0, 1000).Select(_ => RecordHandle.New()).ToList();

        Assert.All(handles, h => Assert.True(RecordHandle.IsWellFormed(h)));
        Assert.Equal(1000, handles.Distinct().Count());
        Assert.False(RecordHandle.IsWellFormed("../../etc/passwd"));
        Assert.False(RecordHandle.IsWellFormed(handles[0].ToUpperInvariant()));
    }
}
