using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging.Abstractions;
using Org.BouncyCastle.X509;
using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Tests.Audit;

namespace TrustedProxy.Tests.CertificateAuthority;

/// <summary>
/// An offline root and an online issuing intermediate (issue 16): the root's key only where the
/// operator put it, members chained root → intermediate → member, rotation without re-enrolment,
/// revocation under every intermediate, and the two-level installations made before still working.
/// </summary>
public sealed class OfflineRootTests : IDisposable
{
    private const string RootPassphrase = "a root passphrase kept in a safe";
    private const string IssuingPassphrase = "derived-from-the-master-key-in-production";
    private readonly AuditTestLog _log = new(checkpointEveryEntries: 1000);
    private readonly TemporaryDirectory _offline = new();
    private readonly CertificateAuthorityPaths _paths;
    private readonly string _rootKey;

    public OfflineRootTests()
    {
        _paths = new CertificateAuthorityPaths(Path.Combine(_log.Root, "certs"));
        _rootKey = Path.Combine(_offline.Path, "root.key.pem");
    }

    [Fact]
    public async Task CaInit_LeavesTheRootKeyOnlyWhereTheOperatorSaid_AndTheIntermediateIssues()
    {
        await using var log = _log.Open();
        var ca = ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System, log);

        // The root: P-384, one intermediate allowed below it. Its key is in the operator's file, encrypted.
        var root = ca.Certificate;
        Assert.Equal(1, root.Extensions.OfType<X509BasicConstraintsExtension>().Single().PathLengthConstraint);
        Assert.Contains("BEGIN ENCRYPTED PRIVATE KEY", File.ReadAllText(_rootKey), StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_rootKey));
        OfflineRoot.Open(_rootKey, RootPassphrase, root).Dispose();
        Assert.False(File.Exists(_paths.CaPrivateKey));
        AssertNoFileHoldsTheRootKey(_log.Root, root);

        // The intermediate: signed by the root, path length 0, signs members and the CRL.
        var intermediate = ca.IssuingCertificate;
        Assert.Equal(root.SubjectName.Name, intermediate.IssuerName.Name);
        Assert.Equal(0, intermediate.Extensions.OfType<X509BasicConstraintsExtension>().Single().PathLengthConstraint);
        using var member = ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        Assert.Equal(intermediate.SubjectName.Name, member.Certificate.IssuerName.Name);
        Assert.Equal([intermediate.Thumbprint, root.Thumbprint], member.Authorities.Select(a => a.Thumbprint));
        new X509CrlParser().ReadCrl(File.ReadAllBytes(_paths.Crl)).Verify(new X509CertificateParser().ReadCertificate(intermediate.RawData).GetPublicKey());

        // The server: reopened from its directories alone (no root key), it issues and admits.
        var server = ProxyCertificateAuthority.Open(_paths, IssuingPassphrase, TimeProvider.System, log);
        using var second = server.IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(30));
        var validator = Validator();
        Assert.True(validator.Validate(member.Certificate).Accepted, validator.Validate(member.Certificate).Reason);
        Assert.True(validator.Validate(second.Certificate).Accepted);
        Assert.Equal(intermediate.Thumbprint, FederationTrust.Of(_paths).IssuerOf(second.Certificate)!.Thumbprint);

        // The PKCS#12 a member receives carries its chain up to the root.
        var collection = X509CertificateLoader.LoadPkcs12Collection(member.ExportPkcs12("a long password 1"), "a long password 1");
        Assert.Equal(3, collection.Count);

        await log.CheckpointAsync();
        var kinds = _log.Lines().Select(AuditTestLog.Parse).Select(e => e["kind"]!.GetValue<string>()).ToList();
        Assert.Equal([AuditKinds.CaCreate, AuditKinds.CaIntermediate, AuditKinds.CaIssue, AuditKinds.CaIssue], kinds.Take(4));
    }

    [Fact]
    public async Task AMemberOfARotatedIntermediate_IsAccepted_AndOneOfTheFirstStillIs_WithoutReEnrolment()
    {
        await using var log = _log.Open();
        var server = ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System, log);
        var first = server.IssuingCertificate;
        using var before = server.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var validator = Validator();
        Assert.True(validator.Validate(before.Certificate).Accepted);

        // Rotated elsewhere (the CLI at a ceremony) while the server keeps its CA open.
        var rotated = ProxyCertificateAuthority.RotateIntermediate(_paths, _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System, log);
        var second = rotated.IssuingCertificate;
        Assert.NotEqual(first.Thumbprint, second.Thumbprint);
        Assert.NotEqual(first.Subject, second.Subject);
        Assert.Equal(2, Directory.GetFiles(_paths.IntermediatesDirectory, "*.crt.pem").Length);

        // The running server issues from the new intermediate at once.
        using var after = server.IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(30));
        Assert.Equal(second.SubjectName.Name, after.Certificate.IssuerName.Name);
        server.PublishCrl();

        var afterCheck = validator.Validate(after.Certificate);
        Assert.True(afterCheck.Accepted, afterCheck.Reason);
        var beforeCheck = validator.Validate(before.Certificate);
        Assert.True(beforeCheck.Accepted, beforeCheck.Reason);

        await log.CheckpointAsync();
        var rotation = _log.Lines().Select(AuditTestLog.Parse).Where(e => e["kind"]!.GetValue<string>() == AuditKinds.CaIntermediate).Last()["data"]!;
        Assert.Equal("rotate", rotation["step"]!.GetValue<string>());
        Assert.Equal(CertificateSerial.Of(first), rotation["previous"]!.GetValue<string>());
        Assert.Equal(CertificateSerial.Of(second), rotation["serial"]!.GetValue<string>());
    }

    [Fact]
    public void ARevokedMemberUnderEachIntermediate_IsRefused_AndAWithdrawnIntermediateTakesItsMembersWithIt()
    {
        var ca = ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System);
        var first = ca.IssuingCertificate;
        using var oldRevoked = ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        using var oldKept = ca.IssueClient("Haukeland", ProxyRole.Producer, TimeSpan.FromDays(30));
        ca = ProxyCertificateAuthority.RotateIntermediate(_paths, _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System);
        using var newRevoked = ca.IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(30));
        using var newKept = ca.IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(30));
        var validator = Validator();

        // One CRL, signed by the new intermediate, lists members of both.
        ca.Revoke(oldRevoked.Serial, RevocationReason.KeyCompromise);
        ca.Revoke(newRevoked.Serial, RevocationReason.KeyCompromise);

        Assert.Contains("revoked", validator.Validate(oldRevoked.Certificate).Reason, StringComparison.Ordinal);
        Assert.Contains("revoked", validator.Validate(newRevoked.Certificate).Reason, StringComparison.Ordinal);
        Assert.False(validator.Validate(oldRevoked.Certificate).Accepted);
        Assert.False(validator.Validate(newRevoked.Certificate).Accepted);
        Assert.True(validator.Validate(oldKept.Certificate).Accepted);
        Assert.True(validator.Validate(newKept.Certificate).Accepted);

        // The issuing intermediate cannot be revoked under itself; an earlier one can, and its members go with it.
        Assert.Throws<CertificateAuthorityException>(() => ca.Revoke(CertificateSerial.Of(ca.IssuingCertificate), RevocationReason.KeyCompromise));
        ca.Revoke(CertificateSerial.Of(first), RevocationReason.KeyCompromise);
        var withdrawn = validator.Validate(oldKept.Certificate);
        Assert.False(withdrawn.Accepted);
        Assert.Contains("intermediate", withdrawn.Reason, StringComparison.Ordinal);
        Assert.True(validator.Validate(newKept.Certificate).Accepted);
    }

    [Fact]
    public void ACertificateFromAnotherRootsIntermediate_OrSignedByTheOfflineRootDirectly_IsRefused()
    {
        var ca = ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System);
        using var otherCerts = new TemporaryDirectory();
        using var otherOffline = new TemporaryDirectory();
        var foreign = ProxyCertificateAuthority.CreateWithOfflineRoot(new CertificateAuthorityPaths(otherCerts.Path), "Test Root", Path.Combine(otherOffline.Path, "root.key.pem"), RootPassphrase, IssuingPassphrase, TimeProvider.System);
        using var stranger = foreign.IssueClient("Haukeland", ProxyRole.Admin, TimeSpan.FromDays(30));
        var validator = Validator();

        var check = validator.Validate(stranger.Certificate);
        Assert.False(check.Accepted);
        Assert.Contains("does not chain", check.Reason, StringComparison.Ordinal);

        // A member certificate the root signed itself (a root used online after all) is not one of ours either.
        using var root = OfflineRoot.Open(_rootKey, RootPassphrase, ca.Certificate);
        using var memberKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Haukeland admin, OU=admin, O=Haukeland", memberKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(CertificateTemplate.ClientAuthOid)], critical: false));
        request.CertificateExtensions.Add(new X509Extension(FederationIdentityExtension.Oid, FederationIdentityExtension.Encode("Haukeland", ProxyRole.Admin), critical: false));
        using var direct = request.Create(root, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(16));
        var directCheck = validator.Validate(direct);
        Assert.False(directCheck.Accepted);
        Assert.Contains("intermediate", directCheck.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ATwoLevelInstallation_KeepsWorking_AndCannotBeRotated()
    {
        var ca = ProxyCertificateAuthority.Create(_paths, "Older Root", "an older installation's passphrase", TimeProvider.System);
        using var member = ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        using var revoked = ca.IssueClient("Haukeland", ProxyRole.Producer, TimeSpan.FromDays(30));
        var validator = Validator();

        Assert.False(_paths.HasIntermediate);
        Assert.Equal(ca.Certificate.Thumbprint, ca.IssuingCertificate.Thumbprint);
        Assert.True(validator.Validate(member.Certificate).Accepted, validator.Validate(member.Certificate).Reason);
        ca.Revoke(revoked.Serial, RevocationReason.Superseded);
        Assert.False(validator.Validate(revoked.Certificate).Accepted);
        Assert.True(validator.Validate(member.Certificate).Accepted);

        var refused = Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.RotateIntermediate(_paths, _paths.CaPrivateKey, "an older installation's passphrase", IssuingPassphrase, TimeProvider.System));
        Assert.Contains("no intermediate", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_paths.IntermediatesDirectory));
    }

    [Fact]
    public void BadInput_IsRefused_AndChangesNothing()
    {
        // A short passphrase, or a root key under the certificates directory: no CA, no key anywhere.
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, "short", IssuingPassphrase, TimeProvider.System));
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", Path.Combine(_paths.Root, "root.key.pem"), RootPassphrase, IssuingPassphrase, TimeProvider.System));
        Assert.False(Directory.Exists(_paths.Root));
        Assert.False(File.Exists(_rootKey));

        // A rotation with the wrong passphrase, or another root's key: the intermediate stays as it was.
        var ca = ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", _rootKey, RootPassphrase, IssuingPassphrase, TimeProvider.System);
        var intermediate = File.ReadAllText(_paths.IntermediateCertificate);
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.RotateIntermediate(_paths, _rootKey, "not the root passphrase at all", IssuingPassphrase, TimeProvider.System));
        using var other = new TemporaryDirectory();
        var otherKey = Path.Combine(_offline.Path, "other-root.key.pem");
        ProxyCertificateAuthority.CreateWithOfflineRoot(new CertificateAuthorityPaths(other.Path), "Test Root", otherKey, RootPassphrase, IssuingPassphrase, TimeProvider.System);
        var wrongRoot = Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.RotateIntermediate(_paths, otherKey, RootPassphrase, IssuingPassphrase, TimeProvider.System));
        Assert.Contains("not the key of this federation's root", wrongRoot.Message, StringComparison.Ordinal);
        Assert.Equal(intermediate, File.ReadAllText(_paths.IntermediateCertificate));
        Assert.Single(Directory.GetFiles(_paths.IntermediatesDirectory));
        Assert.Equal(CertificateSerial.Of(ca.IssuingCertificate), Assert.Single(ca.List(), c => c.Kind == OfflineRoot.IntermediateKind).Serial);

        // A second init over an existing CA.
        Assert.Throws<CertificateAuthorityException>(() => ProxyCertificateAuthority.CreateWithOfflineRoot(_paths, "Test Root", Path.Combine(_offline.Path, "again.key.pem"), RootPassphrase, IssuingPassphrase, TimeProvider.System));
        Assert.False(File.Exists(Path.Combine(_offline.Path, "again.key.pem")));
    }

    public void Dispose()
    {
        _log.Dispose();
        _offline.Dispose();
    }

    // As the server builds it: the root, the intermediates directory, the CRL the issuer publishes.
    private ClientCertificateValidator Validator()
    {
        var trust = FederationTrust.Of(_paths);
        return new ClientCertificateValidator(trust, new PublishedRevocationList(_paths.Crl, trust, TimeProvider.System, NullLogger<PublishedRevocationList>.Instance), TimeProvider.System);
    }

    // Every key file under the server's directories is tried with every passphrase in play: none is the root's.
    private static void AssertNoFileHoldsTheRootKey(string directory, X509Certificate2 root)
    {
        using var rootPublic = root.GetECDsaPublicKey()!;
        var rootSpki = rootPublic.ExportSubjectPublicKeyInfo();
        foreach (var file in Directory.GetFiles(directory, "*", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotContain("BEGIN PRIVATE KEY", text, StringComparison.Ordinal);
            if (!text.Contains("BEGIN ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var passphrase in new[] { RootPassphrase, IssuingPassphrase })
            {
                using var key = ECDsa.Create();
                try
                {
                    key.ImportFromEncryptedPem(text, passphrase);
                }
                catch (CryptographicException)
                {
                    continue;
                }

                Assert.False(key.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(rootSpki), $"{file} holds the root key");
            }
        }
    }
}
