using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.X509;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.CertificateAuthority;

/// <summary>Administrators issue, list and revoke over the API; the CA's public material is there for every member.</summary>
public sealed class CertificateAuthorityApiTests : ProxyTest
{
    [Fact]
    public async Task AnAdmin_SignsACsr_AndTheNewCertificateWorks()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=ignored", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

        var issued = await Proxy.Client(ProxyRole.Admin).IssueCertificateAsync("Haukeland", "consumer", validityDays: 30, csrPem: csr);

        Assert.Null(issued.Pkcs12Base64);
        using var certificate = X509Certificate2.CreateFromPem(issued.CertificatePem).CopyWithPrivateKey(key);
        var me = await Proxy.Client(certificate).WhoAmIAsync();
        Assert.Equal(("Haukeland", "consumer", issued.Serial), (me.Organisation, me.Role, me.CertificateSerial));
    }

    [Fact]
    public async Task AnAdmin_IssuesAPkcs12_ListsIt_AndRevokesIt_WhichTakesEffectAtOnce()
    {
        var admin = Proxy.Client(ProxyRole.Admin);
        var issued = await admin.IssueCertificateAsync("Local Hospital", "producer", pkcs12Password: "correct horse battery");
        using var certificate = X509CertificateLoader.LoadPkcs12(Convert.FromBase64String(issued.Pkcs12Base64!), "correct horse battery");
        Assert.Equal("producer", (await Proxy.Client(certificate).WhoAmIAsync()).Role);
        Assert.Contains(await admin.ListCertificatesAsync(), c => c.Serial == issued.Serial && c.RevokedAt is null);

        await admin.RevokeCertificateAsync(issued.Serial, "superseded");

        Assert.Contains(await admin.ListCertificatesAsync(), c => c.Serial == issued.Serial && c.RevocationReason == "superseded");
        var fresh = Proxy.Client(certificate);
        await Assert.ThrowsAsync<HttpRequestException>(() => fresh.WhoAmIAsync());
    }

    [Fact]
    public async Task IssuingWithoutACsrOrAStrongPassword_IsRefused()
    {
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Admin).IssueCertificateAsync("Local Hospital", "consumer", pkcs12Password: "short"));

        Assert.Equal(400, error.Status);
        Assert.Equal("urn:trustedproxy:problem:ca-request-refused", error.ProblemType);
    }

    [Fact]
    public async Task AnotherOrganisationsKey_IsNotMadeByTheProxy_ItSendsACsr_AndNothingIsIssued()
    {
        var admin = Proxy.Client(ProxyRole.Admin);
        var before = (await admin.ListCertificatesAsync()).Count;

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => admin.IssueCertificateAsync("Haukeland", "consumer", pkcs12Password: "a long enough password"));

        Assert.Equal(400, error.Status);
        Assert.Equal("urn:trustedproxy:problem:ca-request-refused", error.ProblemType);
        Assert.Contains("send a csrPem", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, (await admin.ListCertificatesAsync()).Count);
    }

    [Fact]
    public async Task RevokingAnUnknownSerial_Gets404() =>
        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Admin).RevokeCertificateAsync("0BADC0DE"))).Status);

    [Theory]
    [InlineData(ProxyRole.Producer)]
    [InlineData(ProxyRole.Consumer)]
    [InlineData(ProxyRole.Compliance)]
    public async Task OnlyAdmins_ManageTheCa(ProxyRole role)
    {
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(role).ListCertificatesAsync());

        Assert.Equal(403, error.Status);
    }

    [Fact]
    public async Task EveryMember_ReadsTheCrlAtItsDocumentedUrl_SignedByTheCa()
    {
        var der = await Proxy.Client(ProxyRole.Consumer).GetCrlAsync();

        var crl = new X509CrlParser().ReadCrl(der);
        crl.Verify(new X509CertificateParser().ReadCertificate(Proxy.CaCertificate.RawData).GetPublicKey());
    }

    [Fact]
    public async Task TheCaCertificate_IsServedAsPem()
    {
        using var response = await Proxy.Client(ProxyRole.Producer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "ca/certificate"));

        var pem = await response.Content.ReadAsStringAsync();
        Assert.Equal(Proxy.CaCertificate.Thumbprint, X509Certificate2.CreateFromPem(pem).Thumbprint);
    }
}
