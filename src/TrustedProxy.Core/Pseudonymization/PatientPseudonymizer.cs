using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Pseudonymization;

/// <summary>
/// Turns a patient identifier into the proxy's keyed pseudonym: HMAC-SHA256 under a key derived
/// from the master key, truncated to 128 bits, hex. The same Patient ID always gives the same
/// pseudonym inside this proxy (so searches and linkage work), and nobody without the key can
/// compute or reverse it. Identifiers are taken as the hospitals send them: two hospitals that use
/// the same Patient ID for one patient share a pseudonym.
/// </summary>
internal sealed class PatientPseudonymizer(byte[] key)
{
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("patient-id\0");

    public string Pseudonymize(string patientId)
    {
        var input = Encoding.UTF8.GetBytes(patientId.Trim());
        Span<byte> mac = stackalloc byte[32];
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(Label);
        hmac.AppendData(input);
        hmac.GetHashAndReset(mac);
        return Convert.ToHexStringLower(mac[..16]);
    }
}
