using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging.Abstractions;
using Org.BouncyCastle.X509;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Tests.CertificateAuthority;

public sealed class CertificateAuthorityTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly CertificateAuthorityPaths _paths;
    private readonly ProxyCertificateAuthority _ca;

    public CertificateAuthorityTests()
    {
        _paths = new CertificateAuthorityPaths(_directory.Path);
        _ca = ProxyCertificateAuthority.Create(_paths, "Test Root", passphrase: null, TimeProvider.System);
    }

    [Fact]
    public void TheRoot_IsAnEcdsaP384CaLimitedToSigningLeaves()
    {
        var root = _ca.Certificate;
        using var key = root.GetECDsaPublicKey()!;

        Assert.Equal(384, key.KeySize);
        var constraints = root.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.True(constraints.CertificateAuthority);
        Assert.True(constraints.HasPathLengthConstraint);
        Assert.Equal(0, constraints.PathLengthConstraint);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, root.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
    }

    [Fact]
    public void ThePrivateKey_IsEncryptedAndOwnerOnly_AndOpensOnlyWithItsKeyFile()
    {
        var pem = File.ReadAllText(_paths.CaPrivateKey);

        Assert.Contains("BEGIN ENCRYPTED PRIVATE KEY", pem);
        Assert.DoesNotContain("BEGIN PRIVATE KEY", pem);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_paths.CaPrivateKey));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_paths.CaKeyFile));
        Assert.NotNull(ProxyCertificateAuthority.Open(_paths, TimeProvider.System));
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.Open(_paths, "not the passphrase", TimeProvider.System));
    }

    [Fact]
    public void ByDefault_TheKeysPassphraseIsDerivedFromTheMasterKey_NothingBesideTheKeyOpensIt_AndAnotherMasterKeyCannot()
    {
        using var other = new TemporaryDirectory();
        var paths = new CertificateAuthorityPaths(other.Path);
        using var master = TrustedProxy.Crypto.ProxyKeyRing.FromBytes(System.Security.Cryptography.SHA256.HashData("ca passphrase master"u8));
        using var stranger = TrustedProxy.Crypto.ProxyKeyRing.FromBytes(System.Security.Cryptography.SHA256.HashData("another installation"u8));
        var created = LocalFederation.Initialize(paths, "Local Hospital", ["localhost"], CaPassphrase.Derive(master), issueClients: false, TimeProvider.System);

        Assert.True(created.CreatedCa);
        Assert.False(File.Exists(paths.CaKeyFile));
        Assert.Empty(Directory.GetFiles(paths.CaDirectory, "*.secret"));
        Assert.NotNull(ProxyCertificateAuthority.Open(paths, TimeProvider.System, keys: master));

        // The certificates directory alone, or with another installation's master key, opens nothing.
        var alone = Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.Open(paths, TimeProvider.System));
        Assert.Contains("no passphrase for the CA key", alone.Message, StringComparison.Ordinal);
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.Open(paths, TimeProvider.System, keys: stranger));

        // The derivation is a function of the master key alone: the same shares give the same passphrase.
        using var again = TrustedProxy.Crypto.ProxyKeyRing.FromBytes(System.Security.Cryptography.SHA256.HashData("ca passphrase master"u8));
        Assert.Equal(CaPassphrase.Derive(master), CaPassphrase.Derive(again));
        Assert.NotEqual(CaPassphrase.Derive(master), CaPassphrase.Derive(stranger));
    }

    [Fact]
    public void APassphraseInsteadOfAKeyFile_WritesNoKeyFile()
    {
        using var other = new TemporaryDirectory();
        var paths = new CertificateAuthorityPaths(other.Path);
        ProxyCertificateAuthority.Create(paths, "Root", "correct horse battery staple", TimeProvider.System);

        Assert.False(File.Exists(paths.CaKeyFile));
        Assert.NotNull(ProxyCertificateAuthority.Open(paths, "correct horse battery staple", TimeProvider.System));
    }

    [Fact]
    public void AClientCertificate_CarriesClientAuthAndItsIdentityInTheSubject()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Producer, TimeSpan.FromDays(10));
        var certificate = credential.Certificate;

        Assert.Equal("CN=Haukeland producer, OU=producer, O=Haukeland", certificate.Subject);
        Assert.Contains(certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<Oid>(), o => o.Value == "1.3.6.1.5.5.7.3.2");
        using var key = certificate.GetECDsaPublicKey()!;
        Assert.Equal(256, key.KeySize);
        Assert.Contains(_ca.List(), c => c.Serial == credential.Serial && c.Organisation == "Haukeland" && c.Role == "producer");
    }

    [Fact]
    public void APkcs12Export_OpensWithItsPasswordOnly()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));
        var pkcs12 = credential.ExportPkcs12("a long password 1");

        using var loaded = X509CertificateLoader.LoadPkcs12(pkcs12, "a long password 1");
        Assert.True(loaded.HasPrivateKey);
        Assert.Equal(credential.Certificate.Thumbprint, loaded.Thumbprint);
        Assert.ThrowsAny<CryptographicException>(() => X509CertificateLoader.LoadPkcs12(pkcs12, "wrong"));
    }

    [Fact]
    public void ASignedCsr_GetsTheIdentityTheCaDecides_NotTheOneRequested()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=I am an admin, O=Evil", key, HashAlgorithmName.SHA256);
        var csr = request.CreateSigningRequestPem();

        using var signed = _ca.SignRequest(csr, "Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));

        Assert.True(FederationIdentityExtension.TryRead(signed, out var identity));
        Assert.Equal(("Haukeland", ProxyRole.Consumer), (identity!.Organisation, identity.Role));
        Assert.DoesNotContain("Evil", signed.Subject);
    }

    [Fact]
    public void ACsrWithABadSignature_IsRefused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var der = new CertificateRequest("CN=x", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        der[^3] ^= 0x40;
        var pem = PemEncoding.WriteString("CERTIFICATE REQUEST", der);

        Assert.Throws<CertificateAuthorityException>(() => _ca.SignRequest(pem, "Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10)));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" leading space")]
    [InlineData("semi;colon")]
    [InlineData("CN=Injected, O=x")]
    public void InvalidOrganisationNames_AreRefused(string organisation) =>
        Assert.Throws<CertificateAuthorityException>(() => _ca.IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(1)));

    [Fact]
    public void Revoke_PublishesASignedCrlListingTheSerial_WithGrowingCrlNumbers()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));
        var before = new X509CrlParser().ReadCrl(File.ReadAllBytes(_paths.Crl));

        Assert.True(_ca.Revoke(credential.Serial, RevocationReason.KeyCompromise));
        Assert.False(_ca.Revoke(credential.Serial, RevocationReason.KeyCompromise));

        var crl = new X509CrlParser().ReadCrl(File.ReadAllBytes(_paths.Crl));
        crl.Verify(new X509CertificateParser().ReadCertificate(_ca.Certificate.RawData).GetPublicKey());
        Assert.NotNull(crl.GetRevokedCertificate(new Org.BouncyCastle.Math.BigInteger(credential.Serial, 16)));
        Assert.True(CrlNumber(crl) > CrlNumber(before));
    }

    [Fact]
    public void RevokingAnUnknownSerial_IsRefused() =>
        Assert.Throws<CertificateAuthorityException>(() => _ca.Revoke("ABCDEF", RevocationReason.Unspecified));

    public void Dispose() => _directory.Dispose();

    private static long CrlNumber(X509Crl crl) =>
        Org.BouncyCastle.Asn1.X509.CrlNumber.GetInstance(Org.BouncyCastle.X509.Extension.X509ExtensionUtilities.FromExtensionValue(crl.GetExtensionValue(Org.BouncyCastle.Asn1.X509.X509Extensions.CrlNumber))).PositiveValue.LongValue;
}

public sealed class ClientCertificateValidatorTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly CertificateAuthorityPaths _paths;
    private readonly ProxyCertificateAuthority _ca;
    private readonly ClientCertificateValidator _validator;

    public ClientCertificateValidatorTests()
    {
        _paths = new CertificateAuthorityPaths(_directory.Path);
        _ca = ProxyCertificateAuthority.Create(_paths, "Test Root", passphrase: null, TimeProvider.System);
        var crl = new PublishedRevocationList(_paths.Crl, _ca.Certificate, TimeProvider.System, NullLogger<PublishedRevocationList>.Instance);
        _validator = new ClientCertificateValidator(_ca.Certificate, crl, TimeProvider.System);
    }

    [Fact]
    public void AClientCertificateOfThisCa_IsAccepted_WithItsIdentity()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));

        var check = _validator.Validate(credential.Certificate);

        Assert.True(check.Accepted, check.Reason);
        Assert.Equal("Haukeland", check.Identity!.Organisation);
    }

    [Fact]
    public void AnExpiredCertificate_IsRefused()
    {
        using var credential = _ca.Issue(CertificateTemplate.Client("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1)) with
        {
            NotBefore = DateTimeOffset.UtcNow.AddDays(-10),
            NotAfter = DateTimeOffset.UtcNow.AddDays(-1),
        });

        var check = _validator.Validate(credential.Certificate);

        Assert.False(check.Accepted);
        Assert.Contains("expired", check.Reason);
    }

    [Fact]
    public void ACertificateForServerAuthenticationOnly_IsRefused()
    {
        using var credential = _ca.Issue(CertificateTemplate.Client("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1)) with
        {
            ExtendedKeyUsages = [CertificateTemplate.ServerAuthOid],
        });

        var check = _validator.Validate(credential.Certificate);

        Assert.False(check.Accepted);
        Assert.Contains("client authentication", check.Reason);
    }

    [Theory]
    [InlineData("")]
    [InlineData("2.5.29.37.0")]
    [InlineData("1.3.6.1.5.5.7.3.4 1.3.6.1.5.5.7.3.1")]
    public void ACertificateWithoutTheClientAuthUsage_IsRefused_EvenWithNoExtendedKeyUsageAtAll(string oids)
    {
        var usages = oids.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // Signed by this CA with a valid identity: only the extended key usage is wrong (none at all,
        // anyExtendedKeyUsage alone, or e-mail protection and server authentication).
        using var credential = _ca.Issue(CertificateTemplate.Client("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1)) with
        {
            ExtendedKeyUsages = usages,
        });
        Assert.Equal(usages.Length == 0, !credential.Certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Any());

        var check = _validator.Validate(credential.Certificate);

        Assert.False(check.Accepted);
        Assert.Contains("client authentication", check.Reason);
    }

    [Fact]
    public void ACertificateOfAnotherCa_IsRefused()
    {
        using var other = new TemporaryDirectory();
        var foreign = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(other.Path), "Other Root", null, TimeProvider.System);
        using var credential = foreign.IssueClient("Haukeland", ProxyRole.Admin, TimeSpan.FromDays(1));

        var check = _validator.Validate(credential.Certificate);

        Assert.False(check.Accepted);
        Assert.Contains("does not chain", check.Reason);
    }

    [Fact]
    public void ARevokedCertificate_IsRefusedAsSoonAsTheCrlIsPublished()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));
        Assert.True(_validator.Validate(credential.Certificate).Accepted);

        _ca.Revoke(credential.Serial, RevocationReason.KeyCompromise);

        var check = _validator.Validate(credential.Certificate);
        Assert.False(check.Accepted);
        Assert.Contains("revoked", check.Reason);
    }

    [Fact]
    public void WithoutAValidCrl_EveryoneIsRefused()
    {
        using var credential = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(10));
        var crl = File.ReadAllBytes(_paths.Crl);
        crl[^5] ^= 0x01;
        File.WriteAllBytes(_paths.Crl, crl);

        Assert.False(_validator.Validate(credential.Certificate).Accepted);

        File.Delete(_paths.Crl);
        Assert.False(_validator.Validate(credential.Certificate).Accepted);
    }

    [Fact]
    public void TheServerCertificate_CannotBeUsedAsAClientCertificate()
    {
        using var server = _ca.IssueServer(["localhost"], TimeSpan.FromDays(10));

        Assert.False(_validator.Validate(server.Certificate).Accepted);
    }

    public void Dispose() => _directory.Dispose();
}
