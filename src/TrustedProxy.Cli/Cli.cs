using System.CommandLine;
using Microsoft.Extensions.Configuration;
using System.Net.Http;
using System.Security.Authentication;
using System.Security.Cryptography;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Cli;

/// <summary>What every command shares: where the certificates are, how to reach the proxy, how errors are told.</summary>
internal static class Cli
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    public static readonly Option<string> Certs = new("--certs")
    {
        Description = "The certificates directory (CA, server and client credentials)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TPROXY_CERTS") ?? "certs",
    };

    public static readonly Option<string> Server = new("--server")
    {
        Description = "The proxy's address",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TPROXY_SERVER") ?? "https://localhost:8443",
    };

    public static readonly Option<string?> As = new("--as")
    {
        Description = "Use the local credential of this role from certs/clients (producer, consumer, compliance, admin, pacs); with several organisations there, the local organisation's (TrustedProxy:Server:LocalOrganisation)",
    };

    public static readonly Option<string?> Cert = new("--cert")
    {
        Description = "Use this PKCS#12 member credential (.p12) instead of --as",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TPROXY_CERT"),
    };

    public static readonly Option<string?> CertPasswordFile = new("--cert-password-file")
    {
        Description = "File holding the .p12 password (none for the unprotected local credentials)",
    };

    public static readonly Option<string?> Ca = new("--ca")
    {
        Description = "The federation's CA certificate (PEM) to trust the proxy by; default certs/ca/ca.crt.pem",
    };

    public static readonly Option<string?> Purpose = new("--purpose")
    {
        Description = "Purpose of use sent to the proxy: treatment (default), research (records come de-identified) or emergency",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TPROXY_PURPOSE"),
    };

    public static void AddClientOptions(Command command)
    {
        command.Add(Purpose);
        command.Add(Server);
        command.Add(As);
        command.Add(Cert);
        command.Add(CertPasswordFile);
        command.Add(Ca);
        command.Add(Certs);
    }

    public static TrustedProxyClient CreateClient(ParseResult parse, ProxyRole defaultRole)
    {
        var paths = new CertificateAuthorityPaths(parse.GetValue(Certs)!);
        var caPath = parse.GetValue(Ca) ?? paths.CaCertificate;
        if (!File.Exists(caPath))
        {
            throw new CliException($"no CA certificate at '{caPath}'; run 'tproxy init' or pass --ca");
        }

        var certPath = parse.GetValue(Cert);
        if (certPath is null)
        {
            var roleName = parse.GetValue(As) ?? ProxyRoles.ToName(defaultRole);
            if (!ProxyRoles.TryParse(roleName, out var role))
            {
                throw new CliException($"--as must be one of: {string.Join(", ", ProxyRoles.Names)}");
            }

            certPath = FindLocalCredential(paths, role);
        }

        if (!File.Exists(certPath))
        {
            throw new CliException($"no credential at '{certPath}'");
        }

        var password = parse.GetValue(CertPasswordFile) is { } file ? File.ReadAllText(file).TrimEnd('\r', '\n') : string.Empty;
        try
        {
            var client = TrustedProxyClient.FromFiles(new Uri(parse.GetValue(Server)!), certPath, password, caPath);
            client.PurposeOfUse = parse.GetValue(Purpose);
            return client;
        }
        catch (CryptographicException)
        {
            throw new CliException($"cannot open '{certPath}': wrong password or not a PKCS#12 file");
        }
    }

    private static string FindLocalCredential(CertificateAuthorityPaths paths, ProxyRole role)
    {
        var name = ProxyRoles.ToName(role);
        var matches = Directory.Exists(paths.ClientsDirectory)
            ? Directory.GetFiles(paths.ClientsDirectory, $"*-{name}.p12").Order(StringComparer.Ordinal).ToArray()
            : [];
        if (matches.Length == 0)
        {
            throw new CliException($"no {name} credential in '{paths.ClientsDirectory}'; run 'tproxy init' or pass --cert");
        }

        if (matches.Length == 1)
        {
            return matches[0];
        }

        // Enrolling another hospital (`tproxy ca issue`) puts its credentials beside the local ones:
        // --as means the local organisation's, the one the server and `tproxy init` created.
        var local = LocalOrganisation();
        var own = Path.Combine(paths.ClientsDirectory, LocalFederation.ClientFileStem(local, role) + ".p12");
        return matches.Contains(own, StringComparer.Ordinal)
            ? own
            : throw new CliException($"several {name} credentials in '{paths.ClientsDirectory}' and none of the local organisation '{local}' (TrustedProxy:Server:LocalOrganisation); choose one with --cert, e.g. --cert {matches[0]}");
    }

    /// <summary>
    /// Where the CA registry is, as the server finds it (TrustedProxy:Database), so that an issue or a
    /// revocation made here is the one the server reads; an invalid setting stops the command as it stops the server.
    /// </summary>
    public static CertificateRegistryLocation CertificateRegistry()
    {
        var options = Configuration().GetSection(Database.DatabaseOptions.Section).Get<Database.DatabaseOptions>() ?? new Database.DatabaseOptions();
        var errors = options.Validate().ToList();
        return errors.Count == 0 ? CertificateRegistryLocation.From(options) : throw new InvalidConfigurationException(errors);
    }

    // As the server reads it: config/appsettings.json where the command runs, then the environment.
    private static IConfiguration Configuration() => new ConfigurationBuilder()
        .AddJsonFile(Path.GetFullPath(Path.Combine("config", "appsettings.json")), optional: true)
        .AddEnvironmentVariables()
        .Build();

    private static string LocalOrganisation()
    {
        var configuration = Configuration();
        return configuration["TrustedProxy:Server:LocalOrganisation"] is { Length: > 0 } organisation
            ? organisation
            : new ProxyServerOptions().LocalOrganisation;
    }

    /// <summary>Runs a command's body, turning every expected failure into one line on stderr and an exit code.</summary>
    public static void SetAction(Command command, Func<ParseResult, CancellationToken, Task<int>> action) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await action(parse, cancellationToken);
            }
            catch (Exception ex) when (Describe(ex) is { } message)
            {
                Console.Error.WriteLine($"tproxy: {message}");
                return ex is CliException { IsUsage: true } ? Usage : Failed;
            }
        });

    // With TLS 1.3 the client's handshake completes before the proxy judges its certificate, so a
    // refusal shows up as a connection closed at the first response rather than a handshake error.
    private static string DescribeConnection(HttpRequestException http) => http.HttpRequestError switch
    {
        HttpRequestError.SecureConnectionError =>
            "the TLS handshake failed: the proxy refused this certificate, or the proxy's certificate is not from the given CA",
        HttpRequestError.ResponseEnded or HttpRequestError.ConnectionError when http.InnerException is not System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused } =>
            "the proxy closed the connection after the TLS handshake: it refused this certificate (revoked, expired, not for client authentication, or from another CA)",
        _ => $"cannot reach the proxy: {http.Message}",
    };

    private static string? Describe(Exception ex) => ex switch
    {
        CliException cli => cli.Message,
        TrustedProxyException proxy => $"the proxy refused: {proxy.Detail} ({proxy.Status} {proxy.Title})",
        CertificateAuthorityException ca => ca.Message,
        Audit.AuditUnavailableException audit => audit.Message,
        ObliviousTransfer.OtProtocolException ot => $"oblivious transfer failed: {ot.Message}",
        InvalidConfigurationException config => config.Message,
        Crypto.InsecureSecretFileException secret => secret.Message,
        KeyEscrow.KeyShareException share => share.Message,
        Export.ExportBundleException bundle => $"the bundle is refused: {bundle.Message}",
        Backup.BackupIntegrityException backup => $"the backup is damaged: {backup.Message}",
        HttpRequestException http => DescribeConnection(http),
        OperationCanceledException => "cancelled",
        IOException io => io.Message,
        UnauthorizedAccessException access => access.Message,
        _ => $"unexpected error ({ex.GetType().Name}): {ex.Message}",
    };
}

/// <summary>A command failed in a way the user can fix; the message says how.</summary>
internal sealed class CliException(string message, bool isUsage = false) : Exception(message)
{
    public bool IsUsage { get; } = isUsage;
}
