namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Where the CA and the proxy's own TLS material live under the certificates directory:
/// <c>ca/</c> (the root certificate; the issuing intermediate's certificate and encrypted key, every
/// intermediate the root ever issued, the CRL, the registry of issued certificates; or, in an
/// installation made by <c>tproxy init</c> or before intermediates existed, the root's own encrypted key),
/// <c>server/</c> (the proxy's TLS certificate and key) and <c>clients/</c> (issued client credentials).
/// </summary>
public sealed record CertificateAuthorityPaths(string Root)
{
    public string CaDirectory => Path.Combine(Root, "ca");

    /// <summary>The federation's root certificate: the one trust anchor members and the server pin.</summary>
    public string CaCertificate => Path.Combine(CaDirectory, "ca.crt.pem");

    /// <summary>
    /// The root's private key when the root issues members itself (two levels: <c>tproxy init</c>, and
    /// installations made before intermediates), PKCS#8 encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC),
    /// mode 0600. Absent when the root is offline (<c>tproxy ca init</c>).
    /// </summary>
    public string CaPrivateKey => Path.Combine(CaDirectory, "ca.key.pem");

    /// <summary>The issuing intermediate's certificate (three levels); absent in a two-level installation.</summary>
    public string IntermediateCertificate => Path.Combine(CaDirectory, "intermediate.crt.pem");

    /// <summary>The issuing intermediate's private key, encrypted as <see cref="CaPrivateKey"/> is, mode 0600.</summary>
    public string IntermediatePrivateKey => Path.Combine(CaDirectory, "intermediate.key.pem");

    /// <summary>Every intermediate the root issued, current and earlier, by serial (public: members of each still chain through it).</summary>
    public string IntermediatesDirectory => Path.Combine(CaDirectory, "intermediates");

    /// <summary>Whether an issuing intermediate signs for the root (three levels, offline root).</summary>
    public bool HasIntermediate => File.Exists(IntermediateCertificate);

    /// <summary>The key the CA issues and revokes with: the intermediate's, or in a two-level installation the root's.</summary>
    public string IssuingPrivateKey => HasIntermediate ? IntermediatePrivateKey : CaPrivateKey;

    /// <summary>The certificate of <see cref="IssuingPrivateKey"/>.</summary>
    public string IssuingCertificate => HasIntermediate ? IntermediateCertificate : CaCertificate;

    /// <summary>The key file: a random passphrase for <see cref="CaPrivateKey"/>, mode 0600; absent when a passphrase is supplied instead.</summary>
    public string CaKeyFile => Path.Combine(CaDirectory, "ca.key.secret");

    /// <summary>The current certificate revocation list, DER.</summary>
    public string Crl => Path.Combine(CaDirectory, "ca.crl");

    public string Registry => Path.Combine(CaDirectory, "registry.db");

    public string ServerDirectory => Path.Combine(Root, "server");

    public string ServerCertificate => Path.Combine(ServerDirectory, "server.crt.pem");

    public string ServerPrivateKey => Path.Combine(ServerDirectory, "server.key.pem");

    public string ClientsDirectory => Path.Combine(Root, "clients");

    public bool CaExists => File.Exists(CaCertificate) && File.Exists(IssuingPrivateKey);
}
