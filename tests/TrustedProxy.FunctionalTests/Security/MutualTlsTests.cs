using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Security;

/// <summary>Who gets in: only certificates of the proxy's own CA, valid, for client authentication, not revoked.</summary>
public sealed class MutualTlsTests : ProxyTest
{
    [Fact]
    public async Task AMemberCertificate_IsAdmitted_WithItsIdentity()
    {
        var me = await Proxy.Client(ProxyRole.Consumer).WhoAmIAsync();

        Assert.Equal(("Local Hospital", "consumer"), (me.Organisation, me.Role));
    }

    [Fact]
    public async Task NoClientCertificate_IsRefused()
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        });

        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync(new Uri(Proxy.BaseAddress, "healthz")));
    }

    [Fact]
    public async Task ACertificateFromAnotherCa_IsRefused()
    {
        using var other = new TemporaryDirectory();
        var foreign = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(other.Path), "Foreign Root", null, TimeProvider.System);
        using var credential = foreign.IssueClient("Local Hospital", ProxyRole.Admin, TimeSpan.FromDays(1));

        await AssertRefused(credential.Certificate);
    }

    [Fact]
    public async Task ACertificateChainingToACaInTheSystemTrustStore_IsRefused()
    {
        using var other = new TemporaryDirectory();
        var trustedBySystem = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(other.Path), "System Trusted Root", null, TimeProvider.System);
        using var credential = trustedBySystem.IssueClient("Local Hospital", ProxyRole.Admin, TimeSpan.FromDays(1));
        using var store = new X509Store(StoreName.Root, StoreLocation.CurrentUser);
        store.Open(OpenFlags.ReadWrite);
        store.Add(trustedBySystem.Certificate);
        try
        {
            // The platform trusts it now: a default chain build succeeds.
            using (var chain = new X509Chain())
            {
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                Assert.True(chain.Build(credential.Certificate), "the foreign root should be trusted by the system store for this test to mean anything");
            }

            await AssertRefused(credential.Certificate);
        }
        finally
        {
            store.Remove(trustedBySystem.Certificate);
        }
    }

    [Fact]
    public async Task AnExpiredCertificate_IsRefused()
    {
        using var credential = Proxy.OpenCa().Issue(CertificateTemplate.Client("Local Hospital", ProxyRole.Consumer, TimeSpan.FromDays(1)) with
        {
            NotBefore = DateTimeOffset.UtcNow.AddDays(-30),
            NotAfter = DateTimeOffset.UtcNow.AddDays(-1),
        });

        await AssertRefused(credential.Certificate);
    }

    [Fact]
    public async Task ACertificateForServerAuthenticationOnly_IsRefused()
    {
        using var credential = Proxy.OpenCa().Issue(CertificateTemplate.Client("Local Hospital", ProxyRole.Consumer, TimeSpan.FromDays(1)) with
        {
            ExtendedKeyUsages = [CertificateTemplate.ServerAuthOid],
        });

        await AssertRefused(credential.Certificate);
    }

    [Fact]
    public async Task ACertificateWithoutAFederationIdentity_IsRefused()
    {
        using var credential = Proxy.OpenCa().Issue(CertificateTemplate.Client("Local Hospital", ProxyRole.Consumer, TimeSpan.FromDays(1)) with { Identity = null });

        await AssertRefused(credential.Certificate);
    }

    [Fact]
    public async Task ACertificateRevokedWithTheCli_IsRefusedWithoutARestart_OnNewAndOpenConnections()
    {
        using var credential = Proxy.OpenCa().IssueClient("Local Hospital", ProxyRole.Consumer, TimeSpan.FromDays(10));
        var open = Proxy.Client(credential.Certificate);
        Assert.Equal("consumer", (await open.WhoAmIAsync()).Role);

        var (exitCode, output, error) = await CliProcess.RunAsync(Proxy.Root, "ca", "revoke", credential.Serial, "--reason", "key-compromise", "--certs", Proxy.Certificates.Root);
        Assert.True(exitCode == 0, error);
        Assert.Contains("revoked", output);

        // The pooled connection was authenticated before the revocation: the enforcement point stops it.
        var onOpen = await Assert.ThrowsAsync<TrustedProxyException>(() => open.WhoAmIAsync());
        Assert.Equal(401, onOpen.Status);
        Assert.Equal("urn:trustedproxy:problem:certificate-revoked", onOpen.ProblemType);

        // A new connection does not get past the handshake.
        await AssertRefused(credential.Certificate);

        // Everyone else is unaffected.
        Assert.Equal("consumer", (await Proxy.Client(ProxyRole.Consumer).WhoAmIAsync()).Role);
    }

    [Fact]
    public async Task AConsumerUploading_IsDeniedByPolicy_AndTheDecisionIsRecorded()
    {
        var consumer = Proxy.Client(ProxyRole.Consumer);

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => consumer.UploadAsync(new MemoryStream(new DicomFileBuilder().Build())));

        Assert.Equal(403, error.Status);
        Assert.Equal("urn:trustedproxy:problem:forbidden", error.ProblemType);
        Assert.Empty(await Proxy.CloudObjectsAsync());
        var decisions = await ReadDecisionsAsync();
        Assert.Contains(decisions, d => d.GetProperty("action").GetString() == "Upload" && d.GetProperty("role").GetString() == "consumer" && !d.GetProperty("permitted").GetBoolean() && d.GetProperty("rule").GetString() == "default-deny");
    }

    [Fact]
    public async Task AProducerDeleting_IsDeniedByPolicy_AndTheRecordStays()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var upload = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("P1", "Doe^Jane").Build()));

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => producer.DeleteAsync(upload.Handle));

        Assert.Equal(403, error.Status);
        Assert.Single(await Proxy.CloudObjectsAsync());
        Assert.Equal(upload.Handle, (await Proxy.Client(ProxyRole.Consumer).GetAsync(upload.Handle)).Handle);
    }

    [Fact]
    public async Task AnAdminDeleting_RemovesTheIndexEntryAndTheCloudObject()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));

        await Proxy.Client(ProxyRole.Admin).DeleteAsync(upload.Handle);

        Assert.Empty(await Proxy.CloudObjectsAsync());
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).GetAsync(upload.Handle));
        Assert.Equal(404, error.Status);
    }

    [Fact]
    public async Task AProducer_SeesOnlyItsOwnOrganisationsRecords()
    {
        using var otherProducer = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(1));
        var mine = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var theirs = await Proxy.Client(otherProducer.Certificate).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));

        var seen = await Proxy.Client(ProxyRole.Producer).SearchAsync(new RecordSearch());

        Assert.Equal([mine.Handle], seen.Items.Select(i => i.Handle));
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Producer).GetAsync(theirs.Handle));
        Assert.Equal(403, error.Status);
        Assert.Contains("no rule permits role 'producer'", error.Detail, StringComparison.Ordinal);
        Assert.Equal(2, (await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch())).Items.Count);
    }

    private async Task AssertRefused(X509Certificate2 certificate)
    {
        var client = Proxy.Client(certificate);
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => client.WhoAmIAsync());
        Assert.NotEqual(HttpStatusCode.OK, error.StatusCode);
    }

    private async Task<List<System.Text.Json.JsonElement>> ReadDecisionsAsync()
    {
        using var response = await Proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/decisions"));
        response.EnsureSuccessStatusCode();
        return (await System.Text.Json.JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync())).RootElement.EnumerateArray().ToList();
    }
}
