using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using TrustedProxy.Policy;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// The X.509 extension in which the proxy's CA seals a member's organisation and role.
/// OID 2.25.15857946981456065000750495807402303225.1 (an arc under a UUID-derived OID, which
/// needs no registration); value DER <c>SEQUENCE { organisation UTF8String, role UTF8String }</c>;
/// non-critical. The subject (O = organisation, OU = role) repeats it for people and tools; the
/// server believes only the extension, because only the proxy's CA can have put it there.
/// </summary>
public static class FederationIdentityExtension
{
    /// <summary>The extension's object identifier.</summary>
    public const string Oid = "2.25.15857946981456065000750495807402303225.1";

    /// <summary>The extension value for an organisation and role.</summary>
    public static byte[] Encode(string organisation, ProxyRole role) =>
        new DerSequence(new DerUtf8String(organisation), new DerUtf8String(ProxyRoles.ToName(role))).GetDerEncoded();

    /// <summary>Reads the identity sealed into a certificate; false if there is none or it is malformed.</summary>
    public static bool TryRead(X509Certificate2 certificate, out FederationIdentity? identity)
    {
        identity = null;
        var extension = certificate.Extensions[Oid];
        if (extension is null)
        {
            return false;
        }

        try
        {
            if (Asn1Object.FromByteArray(extension.RawData) is not Asn1Sequence { Count: 2 } sequence ||
                sequence[0] is not DerUtf8String organisation || sequence[1] is not DerUtf8String roleName ||
                !ProxyRoles.TryParse(roleName.GetString(), out var role) ||
                !OrganisationName.IsValid(organisation.GetString()))
            {
                return false;
            }

            identity = new FederationIdentity(organisation.GetString(), role, CertificateSerial.Of(certificate));
            return true;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>Rules for organisation names, so that they are safe in subjects, file names and logs.</summary>
public static class OrganisationName
{
    /// <summary>Longest organisation name accepted.</summary>
    public const int MaxLength = 64;

    /// <summary>Letters, digits, spaces and <c>.-_'&amp;()</c>; 1 to 64 characters; no leading or trailing space.</summary>
    public static bool IsValid(string? name) =>
        !string.IsNullOrWhiteSpace(name) && name.Length <= MaxLength && name.Trim() == name &&
        name.All(c => char.IsLetterOrDigit(c) || c is ' ' or '.' or '-' or '_' or '\'' or '&' or '(' or ')');

    /// <summary>A file-name-safe form: lowercase, spaces and punctuation turned into dashes.</summary>
    public static string ToFileStem(string name) =>
        new string(name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
}
