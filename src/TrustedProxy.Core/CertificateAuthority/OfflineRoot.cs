using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.Crypto;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// The federation's root when it is kept offline (docs/certificate-authority.md, "Root and
/// intermediate"): it signs only intermediates, at a ceremony (<c>tproxy ca init</c>, <c>tproxy ca
/// rotate-intermediate</c>), and its key lives in a file the operator names, encrypted under a
/// passphrase the operator gives, never under the server's directories. Built with .NET's own
/// <see cref="CertificateRequest"/>; the running server never loads this key.
/// </summary>
internal static class OfflineRoot
{
    /// <summary>The environment variable that carries the root key's passphrase (or <c>--root-passphrase-file</c>).</summary>
    public const string PassphraseVariable = "TPROXY_CA_ROOT_PASSPHRASE";

    /// <summary>Shortest root passphrase accepted: the key file is meant to travel (a safe, a USB stick), so it must resist guessing on its own.</summary>
    public const int MinPassphraseLength = 16;

    public const string IntermediateKind = "intermediate";

    private const int KeyProtectionIterations = 600_000;
    private static readonly ECCurve Curve = ECCurve.NamedCurves.nistP384;
    private static readonly HashAlgorithmName Hash = HashAlgorithmName.SHA384;
    private static readonly TimeSpan RootValidity = TimeSpan.FromDays(3650);

    // Longer than any member certificate (825 days at most) so that a yearly or two-yearly rotation
    // never leaves a member's certificate outliving its issuer.
    private static readonly TimeSpan IntermediateValidity = TimeSpan.FromDays(1826);
    private static readonly TimeSpan BackdateForClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>A new self-signed root (ECDSA P-384, path length 1: one intermediate below it, then members) with its key.</summary>
    public static X509Certificate2 CreateRoot(string commonName, TimeProvider time)
    {
        using var key = ECDsa.Create(Curve);
        var request = new CertificateRequest(Name(commonName), key, Hash);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 1, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = time.GetUtcNow();
        using var certificate = request.Create(request.SubjectName, X509SignatureGenerator.CreateForECDsa(key), now - BackdateForClockSkew, now + RootValidity, NewSerial());
        return certificate.CopyWithPrivateKey(key);
    }

    /// <summary>
    /// A new issuing intermediate signed by <paramref name="root"/> (which must carry its private key):
    /// ECDSA P-384, path length 0 (it signs members only), five years or until the root expires. Each
    /// gets its own name, so that chains through an old and a new one never confuse a path builder.
    /// </summary>
    public static X509Certificate2 IssueIntermediate(X509Certificate2 root, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var notAfter = Min(now + IntermediateValidity, new DateTimeOffset(root.NotAfter.ToUniversalTime()));
        if (notAfter <= now + TimeSpan.FromDays(30))
        {
            throw new CertificateAuthorityException($"the root expires at {root.NotAfter.ToUniversalTime():O}: too soon to issue an intermediate; the federation needs a new root");
        }

        var serial = NewSerial();
        using var key = ECDsa.Create(Curve);
        var name = Name($"TrustedProxy Issuing CA {now:yyyy-MM-dd} {Convert.ToHexString(serial, 0, 4)}");
        var request = new CertificateRequest(name, key, Hash);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(root, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        using var certificate = request.Create(root, now - BackdateForClockSkew, notAfter, serial);
        return certificate.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the root key for offline storage: encrypted PKCS#8 (PBES2, AES-256, 600,000 PBKDF2 rounds), 0600, never over an existing file.</summary>
    public static void WriteKey(ECDsa key, string path, string passphrase)
    {
        if (File.Exists(path))
        {
            throw new CertificateAuthorityException($"'{path}' already exists; the root key is never written over another file");
        }

        SecretFile.WriteText(path, key.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, KeyProtectionIterations)) + "\n");
    }

    /// <summary>Opens the offline root key and checks that it is <paramref name="root"/>'s; returns the root with its key.</summary>
    public static X509Certificate2 Open(string path, string passphrase, X509Certificate2 root)
    {
        if (!File.Exists(path))
        {
            throw new CertificateAuthorityException($"no root key at '{path}'");
        }

        using var key = ECDsa.Create();
        try
        {
            key.ImportFromEncryptedPem(SecretFile.ReadText(path), passphrase);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new CertificateAuthorityException($"the root key '{path}' could not be decrypted: wrong passphrase or not an encrypted key");
        }

        using var published = root.GetECDsaPublicKey() ?? throw new CertificateAuthorityException("the root certificate has no ECDSA key");
        if (!published.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
        {
            throw new CertificateAuthorityException($"'{path}' is not the key of this federation's root ({root.Subject})");
        }

        return root.CopyWithPrivateKey(key);
    }

    /// <summary>Refuses a root passphrase that is missing or too short to guard a key file on its own.</summary>
    public static string CheckPassphrase(string? passphrase) =>
        passphrase is { Length: >= MinPassphraseLength }
            ? passphrase
            : throw new CertificateAuthorityException($"the root key needs a passphrase of at least {MinPassphraseLength} characters: set {PassphraseVariable} or pass --root-passphrase-file");

    /// <summary>Whether <paramref name="path"/> lies in <paramref name="directory"/> or below (after resolving relative parts).</summary>
    public static bool IsUnder(string path, string directory)
    {
        var full = Path.GetFullPath(path);
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)) + Path.DirectorySeparatorChar;
        return full.StartsWith(root, StringComparison.Ordinal);
    }

    private static X500DistinguishedName Name(string commonName)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddOrganizationName("TrustedProxy federation");
        builder.AddCommonName(commonName);
        return builder.Build();
    }

    // 127 random bits, positive and non-zero, as for every certificate of this CA (RFC 5280 4.1.2.2).
    private static byte[] NewSerial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        return new BigInteger(serial, isUnsigned: true, isBigEndian: true).IsZero ? NewSerial() : serial;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
