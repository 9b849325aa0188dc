using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.Policy;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Decides whether a client certificate may open a connection: it must chain to the proxy's CA
/// and nothing else (custom root trust; the system store is never consulted), be within its
/// validity, carry the clientAuth extended key usage, not be revoked, and carry a federation identity.
/// </summary>
internal sealed class ClientCertificateValidator(X509Certificate2 caCertificate, PublishedRevocationList revocations, TimeProvider time)
{
    private static readonly Oid ClientAuthentication = new(CertificateTemplate.ClientAuthOid);

    public ClientCertificateCheck Validate(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(caCertificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // the CA's own CRL is checked below
        chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
        chain.ChainPolicy.VerificationTime = time.GetUtcNow().UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.DisableCertificateDownloads = true;

        bool built;
        try
        {
            built = chain.Build(certificate);
        }
        catch (CryptographicException ex)
        {
            return ClientCertificateCheck.Refused($"the certificate could not be processed: {ex.Message}");
        }

        if (!built)
        {
            var problems = chain.ChainStatus.Select(s => s.Status).Where(s => s != X509ChainStatusFlags.NoError).Distinct().ToList();
            return ClientCertificateCheck.Refused(Describe(problems));
        }

        // The chain's application policy passes a certificate with no EKU extension at all (RFC 5280:
        // no extension means any use); the proxy's CA always writes one, so its absence is refused too.
        if (!HasClientAuthentication(certificate))
        {
            return ClientCertificateCheck.Refused("the certificate is not valid for client authentication (extended key usage)");
        }

        var root = chain.ChainElements[^1].Certificate;
        if (!root.RawData.AsSpan().SequenceEqual(caCertificate.RawData) || chain.ChainElements.Count != 2)
        {
            return ClientCertificateCheck.Refused("the certificate was not issued directly by this proxy's CA");
        }

        var serial = CertificateSerial.Of(certificate);
        switch (revocations.Check(serial))
        {
            case RevocationStatus.Revoked:
                return ClientCertificateCheck.Refused($"certificate {serial} is revoked");
            case RevocationStatus.Unknown:
                return ClientCertificateCheck.Refused("revocation status unknown: no valid CRL is published");
        }

        if (!FederationIdentityExtension.TryRead(certificate, out var identity))
        {
            return ClientCertificateCheck.Refused("the certificate carries no federation identity (organisation and role)");
        }

        return new ClientCertificateCheck(true, "accepted", identity);
    }

    private static bool HasClientAuthentication(X509Certificate2 certificate)
    {
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().ToList();
        return usages.Count == 1 && usages[0].EnhancedKeyUsages.Cast<Oid>().Any(oid => oid.Value == CertificateTemplate.ClientAuthOid);
    }

    private static string Describe(IReadOnlyList<X509ChainStatusFlags> problems)
    {
        if (problems.Contains(X509ChainStatusFlags.NotTimeValid))
        {
            return "the certificate is expired or not yet valid";
        }

        if (problems.Contains(X509ChainStatusFlags.NotValidForUsage))
        {
            return "the certificate is not valid for client authentication (extended key usage)";
        }

        if (problems.Contains(X509ChainStatusFlags.UntrustedRoot) || problems.Contains(X509ChainStatusFlags.PartialChain))
        {
            return "the certificate does not chain to this proxy's CA";
        }

        return "the certificate chain is invalid: " + string.Join(", ", problems);
    }
}

/// <summary>The outcome of checking a client certificate.</summary>
/// <param name="Accepted">Whether the connection may proceed.</param>
/// <param name="Reason">Why, in words fit for the security log.</param>
/// <param name="Identity">The caller's identity when accepted.</param>
public sealed record ClientCertificateCheck(bool Accepted, string Reason, FederationIdentity? Identity)
{
    public static ClientCertificateCheck Refused(string reason) => new(false, reason, null);
}
