using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Pseudonymization;

/// <summary>
/// Turns identifiers the index must match on (Patient ID, Accession Number) into keyed
/// pseudonyms: HMAC-SHA256 under a key derived from the master key, with a label per kind,
/// truncated to 128 bits, hex. The same value always gives the same pseudonym inside this proxy
/// (so searches and linkage work), and nobody without the key can compute or reverse it.
/// A patient's pseudonym is scoped (<see cref="PatientScope"/>): the same Patient ID from two
/// hospitals is two patients, unless the federation links patients across organisations.
/// </summary>
internal sealed class IdentifierPseudonymizer(byte[] key, bool linkPatientsAcrossOrganisations = false)
{
    public bool LinksPatientsAcrossOrganisations => linkPatientsAcrossOrganisations;

    /// <summary>
    /// The patient's pseudonym: what the index, consent entries, the audit log and search results
    /// know the patient by. Scoped by issuer or origin organisation; with linkage on, the Patient ID's
    /// <see cref="PatientIdMatch"/>, as every index before scoping had it.
    /// </summary>
    public string Patient(string patientId, PatientScope scope) =>
        linkPatientsAcrossOrganisations ? PatientIdMatch(patientId) : Pseudonym("patient-id-scoped", scope.Value + "\0" + patientId.Trim());

    /// <summary>
    /// The Patient ID alone, whoever issued it: what a search that names no issuer matches on. It
    /// says that two records carry the same ID, not that they are one patient.
    /// </summary>
    public string PatientIdMatch(string patientId) => Pseudonym("patient-id", patientId);

    public string Accession(string accessionNumber) => Pseudonym("accession-number", accessionNumber);

    private string Pseudonym(string kind, string value)
    {
        Span<byte> mac = stackalloc byte[32];
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(Encoding.ASCII.GetBytes(kind + "\0"));
        hmac.AppendData(Encoding.UTF8.GetBytes(value.Trim()));
        hmac.GetHashAndReset(mac);
        return Convert.ToHexStringLower(mac[..16]);
    }
}
