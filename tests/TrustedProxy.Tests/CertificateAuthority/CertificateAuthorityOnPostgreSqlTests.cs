using Org.BouncyCastle.X509;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Database;
using TrustedProxy.Policy;
using TrustedProxy.Tests.Database;

namespace TrustedProxy.Tests.CertificateAuthority;

/// <summary>The CA with its registry on PostgreSQL (TrustedProxy:Database), as the server and the CLI both open it.</summary>
public sealed class CertificateAuthorityOnPostgreSqlTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void ARevocationMadeThroughOneOpening_IsInTheCrlTheOtherPublishes_AndNoSqliteRegistryIsWritten()
    {
        var paths = new CertificateAuthorityPaths(_directory.Path);
        var location = CertificateRegistryLocation.From(new DatabaseOptions { Engine = "postgresql", ConnectionString = database.ConnectionString });
        var server = ProxyCertificateAuthority.Create(paths, "Test Root", passphrase: null, TimeProvider.System, registry: location);
        using var credential = server.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));

        // The CLI opens the same CA with the same configuration and revokes.
        var cli = ProxyCertificateAuthority.Open(paths, TimeProvider.System, registry: location);
        Assert.Contains(cli.List(), r => r.Serial == credential.Serial);
        Assert.True(cli.Revoke(credential.Serial, RevocationReason.KeyCompromise));
        File.Delete(paths.Crl);

        server.PublishCrl();

        var crl = new X509CrlParser().ReadCrl(File.ReadAllBytes(paths.Crl));
        Assert.NotNull(crl.GetRevokedCertificate(new Org.BouncyCastle.Math.BigInteger(credential.Serial, 16)));
        Assert.False(File.Exists(paths.Registry), "the registry lives in PostgreSQL, not beside the CA");
        Assert.True(location.Exists(paths));
    }

    public void Dispose() => _directory.Dispose();
}
