using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// URLs the proxy writes into answers come from its configured public address, or from where it
/// listens, never from the request's Host header: a member forging one cannot make a PACS store
/// Retrieve URLs pointing elsewhere.
/// </summary>
public sealed class PublicAddressTests
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.77";
    private const string ForgedHost = "evil.example:666";

    [Fact]
    public async Task RetrieveUrls_FollowTheListeningAddress_NotAForgedHostHeader()
    {
        await using var proxy = await ProxyHost.StartAsync();

        var (stored, text) = await StoreWithForgedHostAsync(proxy);

        var expected = $"https://127.0.0.1:{proxy.BaseAddress.Port}/dicomweb/studies/{Study}";
        Assert.Equal(expected, DicomWebClient.Value(stored, "00081190"));
        Assert.All(stored.GetProperty("00081199").GetProperty("Value").EnumerateArray(), item => Assert.StartsWith(expected + "/series/", DicomWebClient.Value(item, "00081190")));
        Assert.DoesNotContain("evil.example", text);
    }

    [Fact]
    public async Task RetrieveUrls_UseTheConfiguredPublicBaseAddress_WhateverTheHostHeader()
    {
        const string publicBase = "https://pacs-gateway.hospital.example:9443/tproxy";
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Server:PublicBaseAddress"] = publicBase + "/" });

        var (stored, storeText) = await StoreWithForgedHostAsync(proxy);
        using var consumer = ForgingClient(proxy, ProxyRole.Consumer);
        using var search = new HttpRequestMessage(HttpMethod.Get, $"dicomweb/studies/{Study}/instances");
        search.Headers.Host = ForgedHost;
        search.Headers.Accept.ParseAdd("application/dicom+json");
        using var found = await consumer.SendAsync(search);
        var searchText = await found.Content.ReadAsStringAsync();

        Assert.Equal($"{publicBase}/dicomweb/studies/{Study}", DicomWebClient.Value(stored, "00081190"));
        var instances = JsonDocument.Parse(searchText).RootElement;
        Assert.Equal(2, instances.GetArrayLength());
        Assert.All(instances.EnumerateArray(), item => Assert.StartsWith($"{publicBase}/dicomweb/studies/{Study}/series/", DicomWebClient.Value(item, "00081190")));
        Assert.DoesNotContain("evil.example", storeText + searchText);
    }

    private static async Task<(JsonElement Body, string Text)> StoreWithForgedHostAsync(ProxyHost proxy)
    {
        var instances = Enumerable.Range(1, 2).Select(i => new DicomFileBuilder()
            .Patient("HOST-PATIENT", "Forged^Host")
            .Study(Study, $"{Study}.1", "20240102", "CT")
            .PixelData(256, seed: i)
            .Build()).ToList();
        using var producer = ForgingClient(proxy, ProxyRole.Producer);
        using var request = new HttpRequestMessage(HttpMethod.Post, "dicomweb/studies") { Content = DicomWebClient.StowContent(instances) };
        request.Headers.Host = ForgedHost;

        using var response = await producer.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(200, (int)response.StatusCode);
        return (JsonDocument.Parse(text).RootElement.Clone(), text);
    }

    /// <summary>A member's client that sends whatever Host header the test sets (the proxy's TLS certificate is checked against its CA).</summary>
    private static HttpClient ForgingClient(ProxyHost proxy, ProxyRole role)
    {
        var certificate = X509CertificateLoader.LoadPkcs12FromFile(proxy.CredentialPath(role), string.Empty, X509KeyStorageFlags.EphemeralKeySet);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck, DisableCertificateDownloads = true };
        policy.CustomTrustStore.Add(proxy.CaCertificate);
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                CertificateChainPolicy = policy,

                // The forged host is also the TLS server name, which the proxy's certificate does not carry.
                RemoteCertificateValidationCallback = (_, _, _, errors) => (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None,
            },
        };
        return new HttpClient(handler) { BaseAddress = proxy.BaseAddress };
    }
}
