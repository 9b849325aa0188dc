using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Tests.CertificateAuthority;

public sealed class FederationIdentityExtensionTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void IssuedClientCertificate_CarriesOrganisationAndRole()
    {
        var ca = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(_directory.Path), "Test CA", "passphrase", TimeProvider.System);
        using var credential = ca.IssueClient("St Olav Hospital", ProxyRole.Consumer, TimeSpan.FromDays(30));

        Assert.True(FederationIdentityExtension.TryRead(credential.Certificate, out var identity));
        Assert.Equal("St Olav Hospital", identity!.Organisation);
        Assert.Equal(ProxyRole.Consumer, identity.Role);
        Assert.Equal(credential.Serial, identity.CertificateSerial);
    }

    public void Dispose() => _directory.Dispose();
}
