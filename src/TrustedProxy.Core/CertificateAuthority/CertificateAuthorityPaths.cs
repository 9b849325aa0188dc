namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Where the CA and the proxy's own TLS material live under the certificates directory:
/// <c>ca/</c> (CA certificate, encrypted key, key file, CRL, registry of issued certificates),
/// <c>server/</c> (the proxy's TLS certificate and key) and <c>clients/</c> (issued client credentials).
/// </summary>
public sealed record CertificateAuthorityPaths(string Root)
{
    public string CaDirectory => Path.Combine(Root, "ca");

    public string CaCertificate => Path.Combine(CaDirectory, "ca.crt.pem");

    /// <summary>The CA private key, PKCS#8 encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC), mode 0600.</summary>
    public string CaPrivateKey => Path.Combine(CaDirectory, "ca.key.pem");

    /// <summary>The key file: a random passphrase for <see cref="CaPrivateKey"/>, mode 0600; absent when a passphrase is supplied instead.</summary>
    public string CaKeyFile => Path.Combine(CaDirectory, "ca.key.secret");

    /// <summary>The current certificate revocation list, DER.</summary>
    public string Crl => Path.Combine(CaDirectory, "ca.crl");

    public string Registry => Path.Combine(CaDirectory, "registry.db");

    public string ServerDirectory => Path.Combine(Root, "server");

    public string ServerCertificate => Path.Combine(ServerDirectory, "server.crt.pem");

    public string ServerPrivateKey => Path.Combine(ServerDirectory, "server.key.pem");

    public string ClientsDirectory => Path.Combine(Root, "clients");

    public bool CaExists => File.Exists(CaCertificate) && File.Exists(CaPrivateKey);
}
