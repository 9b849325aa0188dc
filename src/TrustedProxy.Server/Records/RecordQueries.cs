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
/// </summary>
internal static class RecordQueries
{
    public static RecordQuery Create(ProxyRequestFeature feature, RecordViews views, IdentifierPseudonymizer pseudonymizer, string? patientId, string? studyUid, string? seriesUid, string? sopUid, string? accessionNumber = null)
    {
        var deidentified = feature.Decision.Obligations.View == RecordView.Deidentified;
        var uidsReplaced = deidentified && !views.Profile(feature.Decision.Obligations).Options.Contains(DeidentificationOption.RetainUids);
        patientId = string.IsNullOrWhiteSpace(patientId) ? null : patientId.Trim();
        return new RecordQuery
        {
            PatientPseudonym = patientId is null || deidentified ? null : pseudonymizer.Patient(patientId),
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
