using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.Tls;

/// <summary>
/// Kestrel listens on HTTPS only and demands a client certificate in the handshake. The
/// certificate is judged by <see cref="ClientCertificateValidator"/> (the proxy's CA alone, validity,
/// clientAuth, CRL, federation identity); a refused certificate never gets an HTTP request through.
/// </summary>
internal static partial class MutualTlsListener
{
    public static void Configure(KestrelServerOptions kestrel, ProxyServerOptions options, long maxRequestBodyBytes, X509Certificate2 serverCertificate, X509Certificate2[] serverChain, ClientCertificateValidator validator, ILogger logger)
    {
        kestrel.AddServerHeader = false;
        kestrel.Limits.MaxRequestBodySize = maxRequestBodyBytes;
        RequestSizeLimits.ConfigureKestrel(kestrel.Limits, options);

        void Https(ListenOptions listen) => listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = serverCertificate,
            ServerCertificateChain = [.. serverChain],
            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            CheckCertificateRevocation = false,
            HandshakeTimeout = TimeSpan.FromSeconds(options.HandshakeTimeoutSeconds),
            ClientCertificateValidation = (certificate, _, _) =>
            {
                // The chain and policy errors from the platform are ignored on purpose: they were
                // built against the system trust store, which is exactly what must not count here.
                var check = validator.Validate(certificate);
                if (!check.Accepted)
                {
                    LogRefused(logger, CertificateSerial.Of(certificate), LogText.Escape(check.Reason));
                }

                return check.Accepted;
            },
        });

        foreach (var url in options.EffectiveUrls)
        {
            var uri = new Uri(url);
            var port = uri.Port;
            if (uri.Host is "localhost")
            {
                kestrel.ListenLocalhost(port, Https);
            }
            else if (uri.Host is "*" or "0.0.0.0" or "+")
            {
                kestrel.ListenAnyIP(port, Https);
            }
            else if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address))
            {
                kestrel.Listen(address, port, Https);
            }
            else
            {
                foreach (var resolved in Dns.GetHostAddresses(uri.Host))
                {
                    kestrel.Listen(resolved, port, Https);
                }
            }
        }
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "TLS handshake refused for client certificate {Serial}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string serial, string reason);
}
