using TrustedProxy.Dicom;

namespace TrustedProxy.Pseudonymization;

/// <summary>
/// The namespace a Patient ID is unique in: the Issuer of Patient ID (0010,0021) the hospital
/// sends, or, where it sends none, the organisation that uploaded the record. Medical record
/// numbers are per hospital; two hospitals' patient 12345 are two patients.
/// </summary>
public readonly record struct PatientScope
{
    private PatientScope(string value) => Value = value;

    public static readonly DicomTag IssuerOfPatientId = new(0x0010, 0x0021);

    /// <summary>The scope as it enters the pseudonym: "issuer:" or "organisation:" and the name.</summary>
    public string Value { get; }

    public static PatientScope OfIssuer(string issuer) => new("issuer:" + issuer.Trim());

    public static PatientScope OfOrganisation(string organisation) => new("organisation:" + organisation.Trim());

    /// <summary>The scope of a record: its header's issuer, else its origin organisation.</summary>
    public static PatientScope Of(DicomDataset header, string originOrganisation) =>
        header.GetString(IssuerOfPatientId)?.Trim() is { Length: > 0 } issuer ? OfIssuer(issuer) : OfOrganisation(originOrganisation);
}

/// <summary>Section TrustedProxy:Pseudonymization.</summary>
public sealed record PseudonymizationOptions
{
    /// <summary>
    /// Treat the same Patient ID as the same patient whoever issued it or uploaded it: one pseudonym,
    /// one consent, one research pseudonym across organisations. Off by default; on, the proxy says
    /// so in the audit log at every start. Only for a federation whose hospitals share one patient
    /// numbering (a national identifier) and that wants its patients linked.
    /// </summary>
    public bool LinkPatientsAcrossOrganisations { get; init; }
}
