using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Server.Hosting;

/// <summary>Where the proxy keeps its state. Section TrustedProxy. Relative paths are relative to the content root.</summary>
public sealed record ProxyPathsOptions
{
    /// <summary>The index database, the master key, the staging area, and the filesystem backend's default root.</summary>
    [Required]
    public string DataDirectory { get; init; } = "data";

    /// <summary>The CA, the proxy's TLS certificate and issued client credentials.</summary>
    [Required]
    public string CertificatesDirectory { get; init; } = "certs";
}

/// <summary>How the proxy listens. Section TrustedProxy:Server.</summary>
public sealed record ProxyServerOptions
{
    /// <summary>HTTPS addresses to listen on, e.g. <c>https://localhost:8443</c> or <c>https://0.0.0.0:443</c>. Plain HTTP is refused.</summary>
    public string[] Urls { get; init; } = [];

    /// <summary>Names and addresses in the proxy's TLS certificate when it is generated.</summary>
    public string[] HostNames { get; init; } = [];

    /// <summary>Create the CA, server certificate and local client credentials on first run.</summary>
    public bool AutoInitializeCertificates { get; init; } = true;

    /// <summary>The organisation of the client credentials created on first run.</summary>
    [Required]
    public string LocalOrganisation { get; init; } = "Local Hospital";

    /// <summary>
    /// Whether the API may make a key pair for an organisation other than <see cref="LocalOrganisation"/>
    /// and hand it out as PKCS#12. Off: another organisation sends a CSR, so its private key is made,
    /// and stays, on its own side; the proxy never holds it (the CLI's <c>ca issue</c> on the proxy's
    /// host is the local set-up and may still make keys).
    /// </summary>
    public bool IssueKeysToOtherOrganisations { get; init; }

    /// <summary>Longest a TLS handshake may take.</summary>
    [Range(1, 300)]
    public int HandshakeTimeoutSeconds { get; init; } = 10;

    /// <summary>Largest body of any request other than an upload.</summary>
    [Range(1024, 1L << 30)]
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// Longest request target (path and query) answered; a longer one is refused with 414
    /// problem+json. Kestrel's own ceiling, which answers without a body, is twice this.
    /// </summary>
    [Range(1024, 1 << 20)]
    public int MaxRequestTargetBytes { get; init; } = 8 * 1024;

    /// <summary>
    /// Largest header block answered (names, values and line ends together); a larger one is
    /// refused with 431 problem+json. Kestrel's own ceiling, which answers without a body, is twice this.
    /// </summary>
    [Range(4 * 1024, 1 << 20)]
    public int MaxRequestHeaderBytes { get; init; } = 32 * 1024;

    /// <summary>
    /// The address members reach the proxy at (<c>https://proxy.hospital.example</c>, optionally
    /// with a path), the base of every URL the proxy writes into an answer (DICOMweb Retrieve URLs).
    /// A request's Host header is never used: it is the caller's to forge. Unset: the first of
    /// <see cref="Urls"/>, its host replaced by the first of <see cref="HostNames"/> when it is a
    /// wildcard address, and its port the one actually bound when it is 0.
    /// </summary>
    public string? PublicBaseAddress { get; init; }

    /// <summary>
    /// How long past its next-update time the CRL is still enforced; after that every client
    /// certificate is refused (fail closed), since revocations made since may be missing from it.
    /// The server signs a fresh CRL daily while it holds the CA key.
    /// </summary>
    [System.ComponentModel.DataAnnotations.Range(0, 30 * 86400)]
    public int CrlGraceSeconds { get; init; } = 86400;

    internal static readonly string[] DefaultUrls = ["https://localhost:8443"];
    internal static readonly string[] DefaultHostNames = ["localhost", "127.0.0.1", "::1"];

    public IReadOnlyList<string> EffectiveUrls => Urls.Length > 0 ? Urls : DefaultUrls;

    public IReadOnlyList<string> EffectiveHostNames => HostNames.Length > 0 ? HostNames : DefaultHostNames;

    internal IEnumerable<string> Validate()
    {
        foreach (var url in EffectiveUrls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            {
                yield return $"TrustedProxy:Server:Urls: '{url}' is not an https:// address; the proxy serves HTTPS only";
            }
        }

        if (!string.IsNullOrEmpty(PublicBaseAddress) && !PublicAddress.TryParse(PublicBaseAddress, out _))
        {
            yield return $"TrustedProxy:Server:PublicBaseAddress: '{PublicBaseAddress}' is not an https:// address without query, fragment or user information";
        }
    }
}
