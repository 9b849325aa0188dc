using System.Security.Cryptography.X509Certificates;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// What the server trusts: the federation's root (pinned, the only trust anchor) and the
/// intermediates that root issued (<c>certs/ca/intermediates/</c>), each checked to be signed by the
/// root when loaded. The directory is read again when it changes, so an intermediate rotated by
/// the CLI while the server runs is known at the next handshake, and members of every intermediate
/// still valid keep chaining. A two-level installation has no intermediates: its root issues members.
/// </summary>
internal sealed class FederationTrust
{
    private readonly string? _directory;
    private readonly Lock _gate = new();
    private (DateTime Written, int Count) _loadedVersion = (DateTime.MinValue, -1);
    private IReadOnlyList<X509Certificate2> _intermediates = [];

    private FederationTrust(X509Certificate2 root, string? directory)
    {
        Root = root;
        _directory = directory;
    }

    /// <summary>The root: the one trust anchor.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>Trust in the CA under <paramref name="paths"/>: its root and whatever intermediates it has.</summary>
    public static FederationTrust Of(CertificateAuthorityPaths paths) =>
        new(ProxyCertificateAuthority.LoadRootCertificate(paths), paths.IntermediatesDirectory);

    /// <summary>A root and nothing else (a two-level CA whose root issues members directly).</summary>
    public static FederationTrust RootOnly(X509Certificate2 root) => new(root, null);

    /// <summary>Every intermediate the root issued that is on disk now (valid or not: the chain check judges time).</summary>
    public IReadOnlyList<X509Certificate2> Intermediates
    {
        get
        {
            if (_directory is null)
            {
                return [];
            }

            var version = Directory.Exists(_directory)
                ? (Directory.GetLastWriteTimeUtc(_directory), Directory.GetFiles(_directory, "*.crt.pem").Length)
                : (DateTime.MinValue, 0);
            lock (_gate)
            {
                if (version != _loadedVersion)
                {
                    _intermediates = Load(_directory, Root);
                    _loadedVersion = version;
                }

                return _intermediates;
            }
        }
    }

    /// <summary>Whether members are issued by intermediates (three levels) rather than by the root itself.</summary>
    public bool HasIntermediates => Intermediates.Count > 0;

    /// <summary>The intermediate whose subject issued <paramref name="certificate"/>, if any (to send in the server's TLS chain).</summary>
    public X509Certificate2? IssuerOf(X509Certificate2 certificate) =>
        Intermediates.FirstOrDefault(i => i.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData));

    // A file that is not an intermediate of this root (signed by another key, or not a CA) is ignored:
    // only the root's signature makes an intermediate, whatever lands in the directory.
    private static List<X509Certificate2> Load(string directory, X509Certificate2 root)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var rootKey = new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(root.RawData).GetPublicKey();
        var loaded = new List<X509Certificate2>();
        foreach (var file in Directory.GetFiles(directory, "*.crt.pem").Order(StringComparer.Ordinal))
        {
            try
            {
                var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(file));
                new Org.BouncyCastle.X509.X509CertificateParser().ReadCertificate(certificate.RawData).Verify(rootKey);
                if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().SingleOrDefault() is { CertificateAuthority: true })
                {
                    loaded.Add(certificate);
                }
            }
            catch (Exception ex) when (ex is IOException or System.Security.Cryptography.CryptographicException or Org.BouncyCastle.Security.InvalidKeyException or Org.BouncyCastle.Security.SignatureException or Org.BouncyCastle.Security.Certificates.CertificateException or ArgumentException)
            {
                // Not one of ours; see above.
            }
        }

        return loaded;
    }
}
