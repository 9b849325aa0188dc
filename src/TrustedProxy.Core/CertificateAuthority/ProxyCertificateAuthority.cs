using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Sec;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Operators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Policy;
using BcCertificate = Org.BouncyCastle.X509.X509Certificate;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// The certificate authority of the federation. The root is ECDSA P-384 (signing with
/// SHA-384); members and the proxy's TLS endpoint get ECDSA P-256 keys. The issuer signs leaf
/// certificates and publishes a CRL after every revocation: the online intermediate when the root
/// is offline (<c>tproxy ca init</c>, <see cref="OfflineRoot"/>), or the root itself in a two-level
/// installation (<c>tproxy init</c>, and every CA made before intermediates; path length 0).
/// With an audit log, creating the CA, every issue and every revocation is appended to it before
/// it takes effect (a certificate is recorded in the registry and handed out only after its entry
/// is durable); if the entry cannot be written, the operation fails and nothing changes.
/// See docs/certificate-authority.md.
/// </summary>
internal sealed class ProxyCertificateAuthority
{
    public const string RootCurve = "P-384";
    public const string LeafCurve = "P-256";
    private const string SignatureAlgorithm = "SHA384WITHECDSA";
    private const int KeyProtectionIterations = 600_000;
    private static readonly TimeSpan RootValidity = TimeSpan.FromDays(3650);
    private static readonly TimeSpan CrlValidity = TimeSpan.FromDays(7);
    private static readonly TimeSpan BackdateForClockSkew = TimeSpan.FromMinutes(5);

    private readonly CertificateAuthorityPaths _paths;
    private readonly IssuedCertificateRegistry _registry;

    // Kept to open the next intermediate's key when the CLI rotates it while the server runs
    // (the server already holds the master key it is derived from); null in a two-level CA.
    private readonly string? _issuingPassphrase;
    private IssuingAuthority _issuer;
    private readonly TimeProvider _time;
    private readonly SecureRandom _random = new();
    private readonly AuditLog? _audit;

    private ProxyCertificateAuthority(CertificateAuthorityPaths paths, IssuingAuthority issuer, X509Certificate2 root, string? issuingPassphrase, TimeProvider time, AuditLog? audit, CertificateRegistryLocation? registry)
    {
        _audit = audit;
        _paths = paths;
        _issuer = issuer;
        _issuingPassphrase = issuingPassphrase;
        _time = time;
        _registry = (registry ?? CertificateRegistryLocation.BesideTheCa).Open(paths, time);
        Certificate = root;
    }

    /// <summary>The root certificate (public part only).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The certificate that signs members and the CRL now: the current intermediate, or the root in a two-level CA.</summary>
    public X509Certificate2 IssuingCertificate => CurrentIssuer().Certificate;

    public CertificateAuthorityPaths Paths => _paths;

    /// <summary>
    /// Creates a new root CA under <paramref name="paths"/>. The private key is encrypted with
    /// <paramref name="passphrase"/>, or, when none is given, with a random key file written beside it (0600).
    /// </summary>
    public static ProxyCertificateAuthority Create(CertificateAuthorityPaths paths, string commonName, string? passphrase, TimeProvider time, AuditLog? audit = null, CertificateRegistryLocation? registry = null)
    {
        if (paths.CaExists)
        {
            throw new CertificateAuthorityException($"a CA already exists in '{paths.CaDirectory}'; remove it first to start a new federation");
        }

        SecretFile.EnsurePrivateDirectory(paths.Root);
        SecretFile.EnsurePrivateDirectory(paths.CaDirectory);
        if (passphrase is null)
        {
            passphrase = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
            SecretFile.WriteText(paths.CaKeyFile, passphrase + "\n");
        }

        var keys = GenerateKeyPair(SecObjectIdentifiers.SecP384r1);
        var now = time.GetUtcNow();
        var name = Name(("O", "TrustedProxy federation"), ("CN", commonName));
        var generator = new X509V3CertificateGenerator();
        generator.SetSerialNumber(NewSerial(new SecureRandom()));
        generator.SetIssuerDN(name);
        generator.SetSubjectDN(name);
        generator.SetNotBefore((now - BackdateForClockSkew).UtcDateTime);
        generator.SetNotAfter((now + RootValidity).UtcDateTime);
        generator.SetPublicKey(keys.Public);
        generator.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(0));
        generator.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.KeyCertSign | KeyUsage.CrlSign));
        generator.AddExtension(X509Extensions.SubjectKeyIdentifier, false, KeyIdentifier(keys.Public));
        var root = generator.Generate(new Asn1SignatureFactory(SignatureAlgorithm, keys.Private, new SecureRandom()));
        audit?.Append(AuditEvents.CaCreate(CertificateSerial.Normalize(root.SerialNumber.ToString(16)), root.SubjectDN.ToString(), new DateTimeOffset(root.NotAfter.ToUniversalTime(), TimeSpan.Zero)));

        using (var ecdsa = ToDotNetKey(keys.Private))
        {
            var pem = ecdsa.ExportEncryptedPkcs8PrivateKeyPem(passphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, KeyProtectionIterations));
            SecretFile.WriteText(paths.CaPrivateKey, pem + "\n");
        }

        File.WriteAllText(paths.CaCertificate, ToPem(root));
        var rootCertificate = X509CertificateLoader.LoadCertificate(root.GetEncoded());
        var ca = new ProxyCertificateAuthority(paths, new IssuingAuthority(keys.Private, root, rootCertificate), rootCertificate, null, time, audit, registry);
        ca.PublishCrl();
        return ca;
    }

    /// <summary>
    /// Creates a new federation with an offline root (<c>tproxy ca init</c>): the root's key is
    /// written to <paramref name="rootKeyOut"/> under <paramref name="rootPassphrase"/> and nowhere
    /// else; an issuing intermediate, whose key is encrypted under <paramref name="issuingPassphrase"/>
    /// (by default derived from the master key, as a two-level CA's key is), signs members and CRLs.
    /// </summary>
    public static ProxyCertificateAuthority CreateWithOfflineRoot(CertificateAuthorityPaths paths, string commonName, string rootKeyOut, string rootPassphrase, string issuingPassphrase, TimeProvider time, AuditLog? audit = null, CertificateRegistryLocation? registry = null)
    {
        if (paths.CaExists || File.Exists(paths.CaCertificate))
        {
            throw new CertificateAuthorityException($"a CA already exists in '{paths.CaDirectory}'; remove it first to start a new federation");
        }

        OfflineRoot.CheckPassphrase(rootPassphrase);
        if (OfflineRoot.IsUnder(rootKeyOut, paths.Root))
        {
            throw new CertificateAuthorityException($"the root key must be kept offline, not under the certificates directory '{paths.Root}': choose another --root-key-out");
        }

        if (File.Exists(rootKeyOut))
        {
            throw new CertificateAuthorityException($"'{rootKeyOut}' already exists; the root key is never written over another file");
        }

        using var root = OfflineRoot.CreateRoot(commonName, time);
        audit?.Append(AuditEvents.CaCreate(CertificateSerial.Of(root), root.Subject, root.NotAfter.ToUniversalTime()));

        // The root key leaves first: if it cannot be written, nothing of the CA is left behind.
        using (var rootKey = root.GetECDsaPrivateKey()!)
        {
            OfflineRoot.WriteKey(rootKey, rootKeyOut, rootPassphrase);
        }

        SecretFile.EnsurePrivateDirectory(paths.Root);
        SecretFile.EnsurePrivateDirectory(paths.CaDirectory);
        File.WriteAllText(paths.CaCertificate, root.ExportCertificatePem() + "\n");
        InstallIntermediate(paths, root, previous: null, issuingPassphrase, time, audit, registry);
        var ca = Open(paths, issuingPassphrase, time, audit, registry);
        ca.PublishCrl();
        return ca;
    }

    /// <summary>
    /// Rotates the issuing intermediate (<c>tproxy ca rotate-intermediate</c>): the root, opened from
    /// its offline key, signs a new intermediate, which issues and signs CRLs from then on. Members of
    /// earlier intermediates are not re-enrolled: their intermediates stay in the directory the
    /// server trusts until they expire, and their revocations stay on the CRL the new one signs. The
    /// old intermediate's key is not needed (it may be the reason for the rotation) and is deleted.
    /// Returns the CA opened on the new intermediate.
    /// </summary>
    public static ProxyCertificateAuthority RotateIntermediate(CertificateAuthorityPaths paths, string rootKeyFile, string rootPassphrase, string issuingPassphrase, TimeProvider time, AuditLog? audit = null, CertificateRegistryLocation? registry = null)
    {
        if (!File.Exists(paths.CaCertificate))
        {
            throw new CertificateAuthorityException($"no CA in '{paths.CaDirectory}'; run 'tproxy ca init' first");
        }

        if (!paths.HasIntermediate)
        {
            throw new CertificateAuthorityException("this CA has no intermediate: its root issues members itself (made by 'tproxy init' or before intermediates), and its root cannot sign one (path length 0); an offline root is a new federation ('tproxy ca init')");
        }

        using var publicRoot = LoadRootCertificate(paths);
        using var root = OfflineRoot.Open(rootKeyFile, rootPassphrase, publicRoot);
        using var previous = X509Certificate2.CreateFromPem(File.ReadAllText(paths.IntermediateCertificate));
        InstallIntermediate(paths, root, previous, issuingPassphrase, time, audit, registry);
        var ca = Open(paths, issuingPassphrase, time, audit, registry);
        ca.PublishCrl();
        return ca;
    }

    // Order matters to a server running on the same files: the new intermediate's certificate joins
    // the trusted directory before anything it signs can appear, and the key before the certificate
    // that names it current; the audit entry comes before any of it.
    private static void InstallIntermediate(CertificateAuthorityPaths paths, X509Certificate2 root, X509Certificate2? previous, string issuingPassphrase, TimeProvider time, AuditLog? audit, CertificateRegistryLocation? registry)
    {
        using var intermediate = OfflineRoot.IssueIntermediate(root, time);
        var serial = CertificateSerial.Of(intermediate);
        audit?.Append(AuditEvents.CaIntermediate(serial, intermediate.Subject, intermediate.NotAfter.ToUniversalTime(), previous is null ? null : CertificateSerial.Of(previous)));
        var now = time.GetUtcNow();
        (registry ?? CertificateRegistryLocation.BesideTheCa).Open(paths, time).Add(new IssuedCertificateRecord(
            serial, intermediate.Subject, string.Empty, string.Empty, OfflineRoot.IntermediateKind,
            intermediate.NotBefore.ToUniversalTime(), intermediate.NotAfter.ToUniversalTime(), now, null, null));

        var pem = intermediate.ExportCertificatePem() + "\n";
        Directory.CreateDirectory(paths.IntermediatesDirectory);
        WriteAtomically(Path.Combine(paths.IntermediatesDirectory, serial + ".crt.pem"), pem);
        using (var key = intermediate.GetECDsaPrivateKey()!)
        {
            SecretFile.WriteText(paths.IntermediatePrivateKey, key.ExportEncryptedPkcs8PrivateKeyPem(issuingPassphrase, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, KeyProtectionIterations)) + "\n");
        }

        WriteAtomically(paths.IntermediateCertificate, pem);
    }

    private static void WriteAtomically(string path, string text)
    {
        var temporary = path + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Opens an existing CA, decrypting its key with <paramref name="passphrase"/>.</summary>
    public static ProxyCertificateAuthority Open(CertificateAuthorityPaths paths, string passphrase, TimeProvider time, AuditLog? audit = null, CertificateRegistryLocation? registry = null)
    {
        if (!paths.CaExists)
        {
            throw new CertificateAuthorityException($"no CA in '{paths.CaDirectory}'; run 'tproxy ca init' first");
        }

        var root = LoadRootCertificate(paths);
        return paths.HasIntermediate
            ? new ProxyCertificateAuthority(paths, IssuingAuthority.Open(paths.IntermediateCertificate, paths.IntermediatePrivateKey, passphrase), root, passphrase, time, audit, registry)
            : new ProxyCertificateAuthority(paths, IssuingAuthority.Open(paths.CaCertificate, paths.CaPrivateKey, passphrase), root, null, time, audit, registry);
    }

    /// <summary>Opens the CA with the passphrase from the environment, a key file, or the master key (<see cref="CaPassphrase.Resolve"/>).</summary>
    public static ProxyCertificateAuthority Open(CertificateAuthorityPaths paths, TimeProvider time, string? keyFile = null, AuditLog? audit = null, CertificateRegistryLocation? registry = null, ProxyKeyRing? keys = null) =>
        Open(paths, CaPassphrase.Resolve(paths, keyFile, keys) ?? throw new CertificateAuthorityException(
            $"no passphrase for the CA key: set {CaPassphrase.EnvironmentVariable}, provide the key file '{keyFile ?? paths.CaKeyFile}', or the master key it was derived from"), time, audit, registry);

    /// <summary>
    /// Re-encrypts the CA key from <paramref name="current"/> to <paramref name="next"/> and removes the
    /// old key file beside it: the new key is written beside the old one, opened with the new
    /// passphrase, audited, then moved over the old one, so a failure at any step leaves the key as it was.
    /// Returns whether a key file was removed.
    /// </summary>
    public static async Task<bool> ChangeKeyPassphraseAsync(CertificateAuthorityPaths paths, string current, string next, string source, AuditLog? audit)
    {
        using var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromEncryptedPem(SecretFile.ReadText(paths.IssuingPrivateKey), current);
        }
        catch (CryptographicException)
        {
            throw new CertificateAuthorityException("the CA private key could not be decrypted with its current passphrase");
        }

        var key = paths.IssuingPrivateKey;
        var staged = key + ".new";
        SecretFile.WriteText(staged, ecdsa.ExportEncryptedPkcs8PrivateKeyPem(next, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, KeyProtectionIterations)) + "\n");
        try
        {
            using var check = ECDsa.Create();
            check.ImportFromEncryptedPem(SecretFile.ReadText(staged), next);
            if (!check.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(ecdsa.ExportSubjectPublicKeyInfo()))
            {
                throw new CertificateAuthorityException("the re-encrypted CA key is not the same key");
            }

            var removes = File.Exists(paths.CaKeyFile);
            if (audit is not null)
            {
                await audit.AppendAsync(AuditEvents.CaKeyPassphrase(source, removes)).ConfigureAwait(false);
            }

            File.Move(staged, key, overwrite: true);
            if (removes)
            {
                File.Delete(paths.CaKeyFile);
            }

            return removes;
        }
        finally
        {
            File.Delete(staged);
        }
    }

    /// <summary>Reads the public root certificate without touching the private key.</summary>
    public static X509Certificate2 LoadRootCertificate(CertificateAuthorityPaths paths) =>
        X509Certificate2.CreateFromPem(File.ReadAllText(paths.CaCertificate));

    /// <summary>Issues a client certificate with a fresh P-256 key pair.</summary>
    public IssuedCredential IssueClient(string organisation, ProxyRole role, TimeSpan validity) =>
        Issue(CertificateTemplate.Client(organisation, role, validity));

    /// <summary>Signs a member's PKCS#10 request; the subject and extensions in it are ignored, the CA decides them.</summary>
    public X509Certificate2 SignRequest(string csrPem, string organisation, ProxyRole role, TimeSpan validity)
    {
        Pkcs10CertificationRequest request;
        try
        {
            var pem = new Org.BouncyCastle.OpenSsl.PemReader(new StringReader(csrPem)).ReadPemObject()
                ?? throw new CertificateAuthorityException("the certificate signing request is not PEM");
            request = new Pkcs10CertificationRequest(pem.Content);
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or InvalidCastException)
        {
            throw new CertificateAuthorityException("the certificate signing request is not a PKCS#10 request in PEM");
        }

        if (!request.Verify())
        {
            throw new CertificateAuthorityException("the certificate signing request's signature does not verify");
        }

        var publicKey = request.GetPublicKey();
        if (publicKey is not ECPublicKeyParameters and not RsaKeyParameters)
        {
            throw new CertificateAuthorityException("the certificate signing request must carry an EC or RSA public key");
        }

        if (publicKey is RsaKeyParameters rsa && rsa.Modulus.BitLength < 2048)
        {
            throw new CertificateAuthorityException("RSA keys shorter than 2048 bits are refused");
        }

        var certificate = Sign(CertificateTemplate.Client(organisation, role, validity), publicKey);
        return X509CertificateLoader.LoadCertificate(certificate.GetEncoded());
    }

    /// <summary>Issues the proxy's TLS server certificate for the given host names and addresses.</summary>
    public IssuedCredential IssueServer(IEnumerable<string> hostNames, TimeSpan validity) =>
        Issue(CertificateTemplate.Server(hostNames, validity));

    /// <summary>Issues a certificate from any template. Public API goes through the named methods; tests use odd templates.</summary>
    internal IssuedCredential Issue(CertificateTemplate template)
    {
        var keys = GenerateKeyPair(SecObjectIdentifiers.SecP256r1);
        var certificate = Sign(template, keys.Public);
        using var publicOnly = X509CertificateLoader.LoadCertificate(certificate.GetEncoded());
        using var ecdsa = ToDotNetKey(keys.Private);
        return new IssuedCredential(publicOnly.CopyWithPrivateKey(ecdsa), Authorities());
    }

    /// <summary>Revokes a certificate and publishes a new CRL. Returns false if it was already revoked.</summary>
    public bool Revoke(string serial, RevocationReason reason)
    {
        serial = CertificateSerial.Normalize(serial);
        var record = _registry.Find(serial) ?? throw new CertificateAuthorityException($"no certificate with serial {serial} was issued by this CA");
        if (serial == CertificateSerial.Of(CurrentIssuer().Certificate))
        {
            throw new CertificateAuthorityException($"{serial} is the intermediate that issues now: rotate it first ('tproxy ca rotate-intermediate'), then revoke it");
        }

        if (record.RevokedAt is null)
        {
            _audit?.Append(AuditEvents.CaRevoke(serial, RevocationReasons.ToName(reason)));
        }

        var changed = _registry.Revoke(serial, RevocationReasons.ToName(reason), _time.GetUtcNow());
        PublishCrl();
        return changed;
    }

    public IReadOnlyList<IssuedCertificateRecord> List() => _registry.List();

    /// <summary>Signs a new CRL listing every revoked certificate and writes it atomically where the server reads it.</summary>
    public byte[] PublishCrl()
    {
        var issuer = CurrentIssuer();
        var now = _time.GetUtcNow();
        var generator = new X509V2CrlGenerator();
        generator.SetIssuerDN(issuer.Bc.SubjectDN);
        generator.SetThisUpdate(now.UtcDateTime);
        generator.SetNextUpdate((now + CrlValidity).UtcDateTime);
        foreach (var revoked in _registry.Revoked())
        {
            var reason = RevocationReasons.TryParse(revoked.RevocationReason, out var r) ? r : RevocationReason.Unspecified;
            generator.AddCrlEntry(new BcBigInteger(revoked.Serial, 16), revoked.RevokedAt!.Value.UtcDateTime, (int)reason);
        }

        generator.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, new AuthorityKeyIdentifier(KeyIdentifier(issuer.Bc.GetPublicKey()).GetKeyIdentifier()));
        generator.AddExtension(X509Extensions.CrlNumber, false, new CrlNumber(BcBigInteger.ValueOf(_registry.NextCrlNumber())));
        var crl = generator.Generate(new Asn1SignatureFactory(SignatureAlgorithm, issuer.SigningKey, _random)).GetEncoded();
        var temporary = _paths.Crl + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(temporary, crl);
        File.Move(temporary, _paths.Crl, overwrite: true);
        return crl;
    }

    private BcCertificate Sign(CertificateTemplate template, AsymmetricKeyParameter publicKey)
    {
        var issuer = CurrentIssuer();
        var now = _time.GetUtcNow();
        var notBefore = template.NotBefore ?? now - BackdateForClockSkew;
        var notAfter = template.NotAfter ?? now + template.Validity;
        if (notAfter > new DateTimeOffset(issuer.Bc.NotAfter.ToUniversalTime(), TimeSpan.Zero))
        {
            throw new CertificateAuthorityException("the requested validity runs past the CA's own");
        }

        var generator = new X509V3CertificateGenerator();
        var serial = NewSerial(_random);
        generator.SetSerialNumber(serial);
        generator.SetIssuerDN(issuer.Bc.SubjectDN);
        generator.SetSubjectDN(Name(template.Subject));
        generator.SetNotBefore(notBefore.UtcDateTime);
        generator.SetNotAfter(notAfter.UtcDateTime);
        generator.SetPublicKey(publicKey);
        generator.AddExtension(X509Extensions.BasicConstraints, true, new BasicConstraints(false));
        generator.AddExtension(X509Extensions.KeyUsage, true, new KeyUsage(KeyUsage.DigitalSignature));
        if (template.ExtendedKeyUsages.Count > 0)
        {
            // RFC 5280 allows no empty EKU extension; a template without usages gets none.
            generator.AddExtension(X509Extensions.ExtendedKeyUsage, false, new ExtendedKeyUsage(template.ExtendedKeyUsages.Select(oid => KeyPurposeID.GetInstance(new DerObjectIdentifier(oid))).ToArray()));
        }

        generator.AddExtension(X509Extensions.SubjectKeyIdentifier, false, KeyIdentifier(publicKey));
        generator.AddExtension(X509Extensions.AuthorityKeyIdentifier, false, new AuthorityKeyIdentifier(KeyIdentifier(issuer.Bc.GetPublicKey()).GetKeyIdentifier()));
        if (template.HostNames.Count > 0)
        {
            generator.AddExtension(X509Extensions.SubjectAlternativeName, false, new GeneralNames(template.HostNames.Select(SubjectAltName).ToArray()));
        }

        if (template.Identity is { } identity)
        {
            generator.AddExtension(new DerObjectIdentifier(FederationIdentityExtension.Oid), false, Asn1Object.FromByteArray(FederationIdentityExtension.Encode(identity.Organisation, identity.Role)));
        }

        var certificate = generator.Generate(new Asn1SignatureFactory(SignatureAlgorithm, issuer.SigningKey, _random));
        _audit?.Append(AuditEvents.CaIssue(
            CertificateSerial.Normalize(serial.ToString(16)),
            template.Kind,
            certificate.SubjectDN.ToString(),
            template.Identity?.Organisation,
            template.Identity is { } issued ? ProxyRoles.ToName(issued.Role) : null,
            notAfter));
        _registry.Add(new IssuedCertificateRecord(
            CertificateSerial.Normalize(serial.ToString(16)),
            certificate.SubjectDN.ToString(),
            template.Identity?.Organisation ?? string.Empty,
            template.Identity is { } id ? ProxyRoles.ToName(id.Role) : string.Empty,
            template.Kind,
            notBefore,
            notAfter,
            now,
            null,
            null));
        return certificate;
    }

    // The CLI may have rotated the intermediate since this CA was opened (the server opens it once at
    // start): the certificate named current on disk decides, and its key is opened when it changed.
    private IssuingAuthority CurrentIssuer()
    {
        if (_issuingPassphrase is null || !File.Exists(_paths.IntermediateCertificate))
        {
            return _issuer;
        }

        using var current = X509Certificate2.CreateFromPem(File.ReadAllText(_paths.IntermediateCertificate));
        if (!current.RawData.AsSpan().SequenceEqual(_issuer.Certificate.RawData))
        {
            _issuer = IssuingAuthority.Open(_paths.IntermediateCertificate, _paths.IntermediatePrivateKey, _issuingPassphrase);
        }

        return _issuer;
    }

    // What a member's PKCS#12 carries besides its own certificate: its issuer, then the root.
    private List<X509Certificate2> Authorities()
    {
        var issuer = CurrentIssuer().Certificate;
        return issuer.RawData.AsSpan().SequenceEqual(Certificate.RawData) ? [Certificate] : [issuer, Certificate];
    }

    private static GeneralName SubjectAltName(string host) =>
        IPAddress.TryParse(host, out _) ? new GeneralName(GeneralName.IPAddress, host) : new GeneralName(GeneralName.DnsName, host);

    private static AsymmetricCipherKeyPair GenerateKeyPair(DerObjectIdentifier curve)
    {
        var generator = new ECKeyPairGenerator();
        generator.Init(new ECKeyGenerationParameters(curve, new SecureRandom()));
        return generator.GenerateKeyPair();
    }

    // Serial numbers: 127 random bits, positive and non-zero (RFC 5280 4.1.2.2 allows up to 20 octets).
    private static BcBigInteger NewSerial(SecureRandom random)
    {
        BcBigInteger serial;
        do
        {
            serial = new BcBigInteger(127, random);
        }
        while (serial.SignValue == 0);

        return serial;
    }

    private static SubjectKeyIdentifier KeyIdentifier(AsymmetricKeyParameter publicKey) =>
        Org.BouncyCastle.X509.Extension.X509ExtensionUtilities.CreateSubjectKeyIdentifier(publicKey);

    private static X509Name Name(params (string Attribute, string Value)[] parts) => Name((IReadOnlyList<(string, string)>)parts);

    private static X509Name Name(IReadOnlyList<(string Attribute, string Value)> parts)
    {
        var oids = parts.Select(p => p.Attribute switch
        {
            "CN" => X509Name.CN,
            "O" => X509Name.O,
            "OU" => X509Name.OU,
            _ => throw new ArgumentOutOfRangeException(nameof(parts), p.Attribute, "unsupported name attribute"),
        }).ToList();
        return new X509Name(oids, parts.Select(p => p.Value).ToList());
    }

    private static ECDsa ToDotNetKey(AsymmetricKeyParameter privateKey)
    {
        var pkcs8 = PrivateKeyInfoFactory.CreatePrivateKeyInfo(privateKey).GetDerEncoded();
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        return ecdsa;
    }

    private static string ToPem(BcCertificate certificate) =>
        PemEncoding.WriteString("CERTIFICATE", certificate.GetEncoded()) + "\n";
}

/// <summary>The certificate that signs members and CRLs, with its key (in BouncyCastle's form, which signs them).</summary>
internal sealed record IssuingAuthority(AsymmetricKeyParameter SigningKey, BcCertificate Bc, X509Certificate2 Certificate)
{
    public static IssuingAuthority Open(string certificateFile, string keyFile, string passphrase)
    {
        using var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromEncryptedPem(SecretFile.ReadText(keyFile), passphrase);
        }
        catch (CryptographicException)
        {
            throw new CertificateAuthorityException("the CA private key could not be decrypted: wrong passphrase or key file");
        }

        var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile));
        using var published = certificate.GetECDsaPublicKey();
        if (published is null || !published.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(ecdsa.ExportSubjectPublicKeyInfo()))
        {
            throw new CertificateAuthorityException($"the CA key '{keyFile}' is not the key of '{certificateFile}'");
        }

        var pkcs8 = ecdsa.ExportPkcs8PrivateKey();
        try
        {
            return new IssuingAuthority(PrivateKeyFactory.CreateKey(pkcs8), new X509CertificateParser().ReadCertificate(certificate.RawData), certificate);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }
}

/// <summary>What to put in a certificate. <see cref="ProxyCertificateAuthority"/> fills in issuer, keys and serial.</summary>
internal sealed record CertificateTemplate(
    string Kind,
    IReadOnlyList<(string Attribute, string Value)> Subject,
    FederationIdentity? Identity,
    IReadOnlyList<string> ExtendedKeyUsages,
    IReadOnlyList<string> HostNames,
    TimeSpan Validity,
    DateTimeOffset? NotBefore = null,
    DateTimeOffset? NotAfter = null)
{
    public const string ClientKind = "client";
    public const string ServerKind = "server";
    public const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    public static CertificateTemplate Client(string organisation, ProxyRole role, TimeSpan validity)
    {
        if (!OrganisationName.IsValid(organisation))
        {
            throw new CertificateAuthorityException($"'{organisation}' is not a valid organisation name: 1-{OrganisationName.MaxLength} letters, digits, spaces or .-_'&()");
        }

        if (validity <= TimeSpan.Zero || validity > TimeSpan.FromDays(825))
        {
            throw new CertificateAuthorityException("client certificate validity must be between 1 day and 825 days");
        }

        var roleName = ProxyRoles.ToName(role);
        return new CertificateTemplate(
            ClientKind,
            [("O", organisation), ("OU", roleName), ("CN", $"{organisation} {roleName}")],
            new FederationIdentity(organisation, role, string.Empty),
            [ClientAuthOid],
            [],
            validity);
    }

    public static CertificateTemplate Server(IEnumerable<string> hostNames, TimeSpan validity)
    {
        var hosts = hostNames.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (hosts.Count == 0)
        {
            throw new CertificateAuthorityException("a server certificate needs at least one host name or address");
        }

        return new CertificateTemplate(ServerKind, [("O", "TrustedProxy"), ("CN", hosts[0])], null, [ServerAuthOid], hosts, validity);
    }
}

/// <summary>A certificate with its private key, and the CAs above it: its issuer first, the root last.</summary>
internal sealed class IssuedCredential(X509Certificate2 certificate, IReadOnlyList<X509Certificate2> authorities) : IDisposable
{
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The certificate that signed <see cref="Certificate"/>: an intermediate, or the root in a two-level CA.</summary>
    public X509Certificate2 Issuer => Authorities[0];

    public IReadOnlyList<X509Certificate2> Authorities { get; } = authorities;

    public string Serial => CertificateSerial.Of(Certificate);

    /// <summary>PKCS#12 with the certificate, its key, its intermediate (if any) and the root, protected with PBES2/AES-256 and SHA-256.</summary>
    public byte[] ExportPkcs12(string password)
    {
        var collection = new X509Certificate2Collection { Certificate };
        foreach (var authority in Authorities)
        {
            collection.Add(X509CertificateLoader.LoadCertificate(authority.RawData));
        }

        return collection.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, password)!;
    }

    public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

    public string PrivateKeyPem
    {
        get
        {
            using var key = Certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("no private key");
            return key.ExportPkcs8PrivateKeyPem() + "\n";
        }
    }

    /// <summary>Writes the certificate (0644) and its key (0600) as PEM.</summary>
    public void WritePem(string certificatePath, string keyPath)
    {
        SecretFile.WriteText(keyPath, PrivateKeyPem);
        File.WriteAllText(certificatePath, CertificatePem);
    }

    public void Dispose() => Certificate.Dispose();
}

/// <summary>RFC 5280 CRL reason codes the CA accepts.</summary>
public enum RevocationReason
{
    /// <summary>No reason given.</summary>
    Unspecified = 0,

    /// <summary>The member's private key is known or suspected to be compromised.</summary>
    KeyCompromise = 1,

    /// <summary>The member changed organisation or role.</summary>
    AffiliationChanged = 3,

    /// <summary>A new certificate replaces this one.</summary>
    Superseded = 4,

    /// <summary>The member left the federation.</summary>
    CessationOfOperation = 5,
}

/// <summary>Revocation reason names as used on the command line and in the API.</summary>
public static class RevocationReasons
{
    public static IReadOnlyList<string> Names { get; } = ["unspecified", "key-compromise", "affiliation-changed", "superseded", "cessation-of-operation"];

    public static string ToName(RevocationReason reason) => reason switch
    {
        RevocationReason.KeyCompromise => "key-compromise",
        RevocationReason.AffiliationChanged => "affiliation-changed",
        RevocationReason.Superseded => "superseded",
        RevocationReason.CessationOfOperation => "cessation-of-operation",
        _ => "unspecified",
    };

    public static bool TryParse(string? name, out RevocationReason reason)
    {
        reason = name switch
        {
            "unspecified" or null or "" => RevocationReason.Unspecified,
            "key-compromise" => RevocationReason.KeyCompromise,
            "affiliation-changed" => RevocationReason.AffiliationChanged,
            "superseded" => RevocationReason.Superseded,
            "cessation-of-operation" => RevocationReason.CessationOfOperation,
            _ => (RevocationReason)(-1),
        };
        return (int)reason >= 0;
    }
}

/// <summary>A CA operation was refused; the message says why and is safe to show the operator.</summary>
public sealed class CertificateAuthorityException(string message) : Exception(message);
