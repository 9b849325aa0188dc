using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// The proxy's own address as members reach it, for URLs written into answers. It comes from the
/// configuration (<see cref="ProxyServerOptions.PublicBaseAddress"/>) or from where the server
/// listens, never from a request: a Host header reflected into a Retrieve URL would let whoever
/// sends the request point a PACS that stores the answer at a server of their choosing.
/// </summary>
internal sealed class PublicAddress(IOptions<ProxyServerOptions> options, IServer server)
{
    private readonly Lazy<string> _base = new(() => Resolve(options.Value, server));

    /// <summary>Scheme, host, port and path prefix, without a trailing slash.</summary>
    public string Base => _base.Value;

    /// <summary>An absolute https URL without query, fragment or user information.</summary>
    public static bool TryParse(string value, [NotNullWhen(true)] out Uri? address) =>
        Uri.TryCreate(value, UriKind.Absolute, out address)
        && address.Scheme == Uri.UriSchemeHttps
        && string.IsNullOrEmpty(address.Query)
        && string.IsNullOrEmpty(address.Fragment)
        && string.IsNullOrEmpty(address.UserInfo);

    // Resolved at the first answer that needs it, when the server is listening and a port of 0 is known.
    private static string Resolve(ProxyServerOptions options, IServer server)
    {
        if (!string.IsNullOrEmpty(options.PublicBaseAddress) && TryParse(options.PublicBaseAddress, out var configured))
        {
            return configured.GetLeftPart(UriPartial.Path).TrimEnd('/');
        }

        var listen = new Uri(options.EffectiveUrls[0]);
        var address = new UriBuilder(Uri.UriSchemeHttps, listen.Host, listen.Port);
        if (IPAddress.TryParse(listen.Host.Trim('[', ']'), out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)))
        {
            address.Host = options.EffectiveHostNames[0];
        }

        if (listen.Port == 0 && server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() is { } bound)
        {
            address.Port = BoundPort(bound);
        }

        return address.Uri.GetLeftPart(UriPartial.Authority);
    }

    // Kestrel writes wildcard bindings as https://[::]:port, which Uri parses.
    private static int BoundPort(string bound) => new Uri(bound).Port;
}
