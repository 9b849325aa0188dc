using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// The server's own limits, sent as raw HTTP/1.1 over mutual TLS (no client library to tidy the
/// request up): a request target or header block over the proxy's limits is a problem+json answer;
/// past Kestrel's ceiling (twice the proxy's) and for a request line Kestrel cannot parse, Kestrel
/// answers itself before any of the proxy's code runs, with a status and no body, as docs/api.md says.
/// </summary>
public sealed class ServerLimitsTests : ProxyTest
{
    [Fact]
    public async Task AHeaderBlockOverTheLimit_Is431ProblemJson()
    {
        var response = await SendAsync($"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: {new string('a', 40 * 1024)}\r\nConnection: close\r\n\r\n");

        Assert.Equal(431, response.Status);
        Assert.Equal("urn:trustedproxy:problem:request-headers-too-large", ProblemType(response));
    }

    [Fact]
    public async Task ARequestTargetOverTheLimit_Is414ProblemJson()
    {
        var response = await SendAsync($"GET /api/v1/records?patientId={new string('7', 10 * 1024)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

        Assert.Equal(414, response.Status);
        Assert.Equal("urn:trustedproxy:problem:uri-too-long", ProblemType(response));
    }

    [Fact]
    public async Task WithinTheLimits_TheRequestIsAnswered()
    {
        var response = await SendAsync($"GET /healthz/live HTTP/1.1\r\nHost: localhost\r\nX-Filler: {new string('a', 30 * 1024)}\r\nConnection: close\r\n\r\n");

        Assert.Equal(200, response.Status);
    }

    [Fact]
    public async Task PastKestrelsCeiling_AndAMalformedRequestLine_KestrelAnswersItself_WithoutABody()
    {
        var headers = await SendAsync($"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: {new string('a', 80 * 1024)}\r\n\r\n");
        Assert.Equal(431, headers.Status);
        Assert.Empty(headers.Body);

        var target = await SendAsync($"GET /healthz?pad={new string('a', 20 * 1024)} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        Assert.Equal(414, target.Status);
        Assert.Empty(target.Body);

        var malformed = await SendAsync("GARBAGE\r\n\r\n");
        Assert.Equal(400, malformed.Status);
        Assert.Empty(malformed.Body);
    }

    private static string ProblemType(RawResponse response)
    {
        Assert.Contains("content-type: application/problem+json", response.Head, StringComparison.OrdinalIgnoreCase);
        return JsonNode.Parse(response.Body)!["type"]!.GetValue<string>();
    }

    private async Task<RawResponse> SendAsync(string request)
    {
        using var certificate = X509CertificateLoader.LoadPkcs12FromFile(Proxy.CredentialPath(ProxyRole.Producer), string.Empty);
        using var ca = Proxy.CaCertificate;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Proxy.BaseAddress.Host, Proxy.BaseAddress.Port);
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, server, _, _) =>
            server is not null && server.Issuer == ca.Subject);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ClientCertificates = [certificate],
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request));
        await tls.FlushAsync();

        // Every answer here ends the connection (Connection: close, or Kestrel closing after a bad request).
        using var received = new MemoryStream();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await tls.CopyToAsync(received, timeout.Token);
        }
        catch (IOException) when (received.Length > 0)
        {
            // A reset after the answer (Kestrel closing with request bytes unread) ends it as well.
        }

        var text = Encoding.UTF8.GetString(received.ToArray());
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no HTTP answer: '{text}'");
        var head = text[..split];
        return new RawResponse(int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), head, Dechunk(head, text[(split + 4)..]));
    }

    private static string Dechunk(string head, string body)
    {
        if (!head.Contains("transfer-encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            return body;
        }

        var result = new StringBuilder();
        while (body.Length > 0)
        {
            var line = body.IndexOf("\r\n", StringComparison.Ordinal);
            var size = Convert.ToInt32(body[..line], 16);
            if (size == 0)
            {
                break;
            }

            result.Append(body, line + 2, size);
            body = body[(line + 2 + size + 2)..];
        }

        return result.ToString();
    }

    private sealed record RawResponse(int Status, string Head, string Body);
}
