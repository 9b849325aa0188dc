using System.Security.Cryptography.X509Certificates;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// One spelling of a serial number everywhere (registry, CRL checks, logs, CLI): uppercase hex,
/// no separators, no leading zeros. Tools print serials with colons or a leading 00; both are accepted.
/// </summary>
public static class CertificateSerial
{
    public static string Of(X509Certificate2 certificate) => Normalize(certificate.SerialNumber);

    public static string Normalize(string serial)
    {
        var cleaned = serial.Replace(":", string.Empty, StringComparison.Ordinal).Trim().ToUpperInvariant();
        if (cleaned.Length == 0 || cleaned.Length > 42 || !cleaned.All(Uri.IsHexDigit))
        {
            throw new CertificateAuthorityException($"'{serial}' is not a certificate serial number (hex)");
        }

        cleaned = cleaned.TrimStart('0');
        return cleaned.Length == 0 ? "0" : cleaned;
    }
}
