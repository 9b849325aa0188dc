using TrustedProxy.Deidentification;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Records;

/// <summary>
/// Builds index queries the same way for the records API and DICOMweb: restricted to the origins
/// any rule could permit (each record is still decided), and speaking the identifiers of the caller's view. In the original view a Patient ID is
/// matched through the index pseudonym; in the de-identified view the identifiers a caller can know
/// are the de-identified ones (research pseudonym, replaced UIDs), so those are matched.
/// A Patient ID with an Issuer of Patient ID names one patient: the pseudonym in that issuer's scope
/// is matched. A Patient ID alone matches every record carrying that ID, whoever issued it; the
/// records still name their own (scoped) patients, so two hospitals' patients are not made one.
/// </summary>
internal static class RecordQueries
{
    public static RecordQuery Create(ProxyRequestFeature feature, RecordViews views, IdentifierPseudonymizer pseudonymizer, string? patientId, string? studyUid, string? seriesUid, string? sopUid, string? accessionNumber = null, string? issuerOfPatientId = null)
    {
        var deidentified = feature.Decision.Obligations.View == RecordView.Deidentified;
        var uidsReplaced = deidentified && !views.Profile(feature.Decision.Obligations).Options.Contains(DeidentificationOption.RetainUids);
        patientId = string.IsNullOrWhiteSpace(patientId) ? null : patientId.Trim();
        issuerOfPatientId = string.IsNullOrWhiteSpace(issuerOfPatientId) ? null : issuerOfPatientId.Trim();
        var original = patientId is not null && !deidentified;
        return new RecordQuery
        {
            PatientPseudonym = original && issuerOfPatientId is not null ? pseudonymizer.Patient(patientId!, PatientScope.OfIssuer(issuerOfPatientId)) : null,
            PatientIdMatch = original && issuerOfPatientId is null ? pseudonymizer.PatientIdMatch(patientId!) : null,
            ResearchPseudonym = patientId is not null && deidentified ? patientId : null,
            AccessionPseudonym = string.IsNullOrWhiteSpace(accessionNumber) || deidentified ? null : pseudonymizer.Accession(accessionNumber),
            StudyInstanceUid = studyUid,
            SeriesInstanceUid = seriesUid,
            SopInstanceUid = sopUid,
            DeidentifiedUids = uidsReplaced,
            OriginOrganisations = feature.Decision.RecordOrigins,
        };
    }
}
