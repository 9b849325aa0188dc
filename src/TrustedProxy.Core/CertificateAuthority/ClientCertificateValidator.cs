using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.Policy;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Decides whether a client certificate may open a connection: it must chain to the proxy's root
/// and nothing else (custom root trust; the system store is never consulted), through one of the
/// root's intermediates (root → intermediate → member) or, in a two-level installation that has
/// none, from the root directly; be within its validity, carry the clientAuth extended key usage,
/// not be revoked (nor its intermediate), and carry a federation identity.
/// </summary>
internal sealed class ClientCertificateValidator
{
    private static readonly Oid ClientAuthentication = new(CertificateTemplate.ClientAuthOid);
    private readonly FederationTrust _trust;
    private readonly PublishedRevocationList _revocations;
    private readonly TimeProvider _time;

    public ClientCertificateValidator(FederationTrust trust, PublishedRevocationList revocations, TimeProvider time)
    {
        _trust = trust;
        _revocations = revocations;
        _time = time;
    }

    /// <summary>A two-level CA: the root issues members directly.</summary>
    public ClientCertificateValidator(X509Certificate2 caCertificate, PublishedRevocationList revocations, TimeProvider time)
        : this(FederationTrust.RootOnly(caCertificate), revocations, time)
    {
    }

    public ClientCertificateCheck Validate(X509Certificate2 certificate)
    {
        var caCertificate = _trust.Root;
        var intermediates = _trust.Intermediates;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(caCertificate);

        // The member's TLS stack usually sends its leaf alone; the intermediates come from the CA's own directory.
        chain.ChainPolicy.ExtraStore.AddRange(intermediates.ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // the CA's own CRL is checked below
        chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
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
        if (!root.RawData.AsSpan().SequenceEqual(caCertificate.RawData))
        {
            return ClientCertificateCheck.Refused("the certificate does not chain to this proxy's CA");
        }

        // Three levels: exactly one intermediate, one the root issued (the platform found it in the
        // directory above). Two levels, only where the CA has no intermediates: an offline root signs
        // intermediates, never members, so a member signed by it directly is not one of ours.
        var expected = intermediates.Count > 0 ? 3 : 2;
        if (chain.ChainElements.Count != expected)
        {
            return ClientCertificateCheck.Refused(expected == 3
                ? "the certificate was not issued by one of this proxy's intermediate CAs"
                : "the certificate was not issued directly by this proxy's CA");
        }

        // Every certificate below the root is on the one CRL the issuing intermediate signs, an
        // earlier intermediate's members and a withdrawn intermediate included (docs/certificate-authority.md).
        for (var i = 0; i < chain.ChainElements.Count - 1; i++)
        {
            var serial = CertificateSerial.Of(chain.ChainElements[i].Certificate);
            switch (_revocations.Check(serial))
            {
                case RevocationStatus.Revoked:
                    return ClientCertificateCheck.Refused(i == 0 ? $"certificate {serial} is revoked" : $"certificate {CertificateSerial.Of(certificate)} was issued by intermediate CA {serial}, which is revoked");
                case RevocationStatus.Unknown:
                    return ClientCertificateCheck.Refused("revocation status unknown: no valid CRL is published");
            }
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
