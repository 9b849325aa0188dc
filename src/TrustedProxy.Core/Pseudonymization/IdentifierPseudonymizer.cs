using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Pseudonymization;

/// <summary>
/// Turns identifiers the index must match on (Patient ID, Accession Number) into keyed
/// pseudonyms: HMAC-SHA256 under a key derived from the master key, with a label per kind,
/// truncated to 128 bits, hex. The same value always gives the same pseudonym inside this proxy
/// (so searches and linkage work), and nobody without the key can compute or reverse it.
/// Identifiers are taken as the hospitals send them: two hospitals that use the same Patient ID for
/// one patient share a pseudonym.
/// </summary>
internal sealed class IdentifierPseudonymizer(byte[] key)
{
    public string Patient(string patientId) => Pseudonym("patient-id", patientId);

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
