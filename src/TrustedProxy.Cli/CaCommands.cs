using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Cli;

/// <summary>
/// <c>tproxy ca …</c>: the certificate authority, operated on the files under certs/ and the registry
/// where the server keeps it (TrustedProxy:Database; works with or without a running server). Creating the CA, issuing and revoking are recorded in the audit log under
/// --data, as the operator at this terminal, before they take effect.
/// </summary>
internal static class CaCommands
{
    public static Command Create()
    {
        var keyFile = new Option<string?>("--key-file") { Description = $"A file holding the CA key's passphrase (default: {CaPassphrase.EnvironmentVariable}, else derived from the master key; a CA made before keeps certs/ca/ca.key.secret)" };
        var command = new Command("ca", "The federation's certificate authority")
        {
            Init(keyFile),
            Issue(keyFile),
            Revoke(keyFile),
            List(keyFile),
            PublishCrl(keyFile),
            Passphrase(keyFile),
        };
        return command;
    }

    private static Command Init(Option<string?> keyFile)
    {
        var hosts = new Option<string[]>("--host") { Description = "Host names and addresses for the proxy's TLS certificate", DefaultValueFactory = _ => ["localhost", "127.0.0.1", "::1"], AllowMultipleArgumentsPerToken = true };
        var command = new Command("init", $"Create the root CA (ECDSA {ProxyCertificateAuthority.RootCurve}) and the proxy's TLS certificate; the key is encrypted with {CaPassphrase.EnvironmentVariable} or a passphrase derived from the master key") { hosts, keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) => AuditCommands.AuditedAsync(parse, audit =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            using var keys = AuditCommands.MasterKey(parse.GetValue(AuditCommands.Data)!, create: true)!;
            var result = LocalFederation.Initialize(paths, "unused", parse.GetValue(hosts)!, CaPassphrase.ForNewKey(keys), issueClients: false, TimeProvider.System, audit, Cli.CertificateRegistry());
            if (!result.CreatedCa)
            {
                throw new CliException($"a CA already exists in '{paths.CaDirectory}'");
            }

            Console.WriteLine($"created CA {paths.CaCertificate} and server certificate {paths.ServerCertificate}");
            Console.WriteLine(Environment.GetEnvironmentVariable(CaPassphrase.EnvironmentVariable) is { Length: > 0 }
                ? $"the CA key is encrypted under {CaPassphrase.EnvironmentVariable}: it is needed to issue and revoke"
                : "the CA key is encrypted under a passphrase derived from the master key (recovered with its shares); nothing beside the key opens it");

            return Task.FromResult(Cli.Ok);
        }));
        return command;
    }

    private static Command Issue(Option<string?> keyFile)
    {
        var organisation = new Option<string>("--org") { Description = "The member organisation", Required = true };
        var role = new Option<string>("--role") { Description = "producer, consumer, compliance or admin", Required = true };
        role.AcceptOnlyFromAmong([.. ProxyRoles.Names]);
        var days = new Option<int>("--days") { Description = "Validity in days", DefaultValueFactory = _ => 365 };
        var csr = new Option<string?>("--csr") { Description = "Sign this PKCS#10 request (PEM) instead of generating a key" };
        var output = new Option<string?>("--out") { Description = "Directory for the output (default certs/clients)" };
        var passwordFile = new Option<string?>("--password-file") { Description = "Protect the .p12 with the password in this file (default: no password, file mode 0600)" };
        var command = new Command("issue", "Issue a member's client certificate (PKCS#12 + PEM, or a signed CSR)") { organisation, role, days, csr, output, passwordFile, keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) => AuditCommands.AuditedAsync(parse, async audit =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var ca = OpenCa(parse, keyFile, audit);
            ProxyRoles.TryParse(parse.GetValue(role), out var parsedRole);
            var org = parse.GetValue(organisation)!;
            var validity = TimeSpan.FromDays(parse.GetValue(days));
            var outDirectory = parse.GetValue(output) ?? paths.ClientsDirectory;
            Crypto.SecretFile.EnsurePrivateDirectory(outDirectory);
            var stem = LocalFederation.ClientFileStem(org, parsedRole);

            if (parse.GetValue(csr) is { } csrPath)
            {
                using var signed = ca.SignRequest(await File.ReadAllTextAsync(csrPath), org, parsedRole, validity);
                var certificatePath = Path.Combine(outDirectory, stem + ".crt.pem");
                await File.WriteAllTextAsync(certificatePath, signed.ExportCertificatePem() + "\n");
                Console.WriteLine($"{CertificateSerial.Of(signed)}\t{certificatePath}");
                return Cli.Ok;
            }

            var password = parse.GetValue(passwordFile) is { } file ? (await File.ReadAllTextAsync(file)).TrimEnd('\r', '\n') : string.Empty;
            using var credential = ca.IssueClient(org, parsedRole, validity);
            LocalFederation.WriteClientCredential(paths with { Root = paths.Root }, stem, credential, password);
            if (outDirectory != paths.ClientsDirectory)
            {
                foreach (var extension in new[] { ".p12", ".crt.pem", ".key.pem" })
                {
                    File.Move(Path.Combine(paths.ClientsDirectory, stem + extension), Path.Combine(outDirectory, stem + extension), overwrite: true);
                }
            }

            Console.WriteLine($"{credential.Serial}\t{Path.Combine(outDirectory, stem + ".p12")}");
            return Cli.Ok;
        }));
        return command;
    }

    private static Command Revoke(Option<string?> keyFile)
    {
        var serial = new Argument<string>("serial") { Description = "Serial number of the certificate (hex, as 'tproxy ca list' shows it)" };
        var reason = new Option<string>("--reason") { Description = string.Join(", ", RevocationReasons.Names), DefaultValueFactory = _ => "unspecified" };
        reason.AcceptOnlyFromAmong([.. RevocationReasons.Names]);
        var command = new Command("revoke", "Revoke a certificate and publish a new CRL; a running server honours it at once") { serial, reason, keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) => AuditCommands.AuditedAsync(parse, audit =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var ca = OpenCa(parse, keyFile, audit);
            RevocationReasons.TryParse(parse.GetValue(reason), out var parsed);
            var changed = ca.Revoke(parse.GetValue(serial)!, parsed);
            Console.WriteLine(changed ? $"revoked {CertificateSerial.Normalize(parse.GetValue(serial)!)}; CRL published at {paths.Crl}" : "already revoked; CRL republished");
            return Task.FromResult(Cli.Ok);
        }));
        return command;
    }

    private static Command List(Option<string?> keyFile)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var command = new Command("list", "Every certificate the CA issued") { json, keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var ca = OpenCa(parse, keyFile);
            var issued = ca.List();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(issued, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
                return Task.FromResult(Cli.Ok);
            }

            var table = new Table().AddColumns("serial", "kind", "organisation", "role", "not after", "revoked");
            foreach (var c in issued)
            {
                table.AddRow(c.Serial, c.Kind, Markup.Escape(c.Organisation), c.Role, c.NotAfter.ToString("yyyy-MM-dd"), c.RevokedAt is { } at ? $"{at:yyyy-MM-dd} ({c.RevocationReason})" : "");
            }

            AnsiConsole.Write(table);
            return Task.FromResult(Cli.Ok);
        });
        return command;
    }

    private static Command Passphrase(Option<string?> keyFile)
    {
        var command = new Command("passphrase", "Re-encrypt the CA key under the passphrase derived from the master key and remove its old key file (a CA made before the passphrase was derived)") { keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) => AuditCommands.AuditedAsync(parse, async audit =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            if (!paths.CaExists)
            {
                throw new CliException($"no CA in '{paths.CaDirectory}'; run 'tproxy ca init' first");
            }

            var data = parse.GetValue(AuditCommands.Data)!;
            using var keys = AuditCommands.MasterKey(data, create: false) ?? throw new CliException(AuditCommands.NoMasterKey(data));
            var derived = CaPassphrase.Derive(keys);
            if (parse.GetValue(keyFile) is null && !File.Exists(paths.CaKeyFile) && OpensWith(paths, derived))
            {
                Console.WriteLine("the CA key is already encrypted under the passphrase derived from the master key; nothing changed");
                return Cli.Ok;
            }

            // The current passphrase: a named file, the old key file beside the key, or the environment.
            var current = CaPassphrase.Resolve(paths, parse.GetValue(keyFile))
                ?? throw new CliException($"no current passphrase for the CA key: pass --key-file or set {CaPassphrase.EnvironmentVariable}");
            var removed = await ProxyCertificateAuthority.ChangeKeyPassphraseAsync(paths, current, derived, "derived from the master key", audit);
            Console.WriteLine($"the CA key is now encrypted under the passphrase derived from the master key{(removed ? $"; removed {paths.CaKeyFile}" : "")}; unset {CaPassphrase.EnvironmentVariable} where it was set for this CA");
            return Cli.Ok;
        }));
        return command;
    }

    private static bool OpensWith(CertificateAuthorityPaths paths, string passphrase)
    {
        try
        {
            using var key = System.Security.Cryptography.ECDsa.Create();
            key.ImportFromEncryptedPem(TrustedProxy.Crypto.SecretFile.ReadText(paths.CaPrivateKey), passphrase);
            return true;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }

    private static Command PublishCrl(Option<string?> keyFile)
    {
        var command = new Command("crl", "Sign and publish a fresh CRL (it is valid for 7 days; the server re-signs it at start and daily while it holds the CA key)") { keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            OpenCa(parse, keyFile).PublishCrl();
            Console.WriteLine($"CRL published at {paths.Crl}");
            return Task.FromResult(Cli.Ok);
        });
        return command;
    }

    // The CA key's passphrase: the environment, --key-file, a CA's older key file beside its key, or
    // derived from the master key under --data (the master key is held only while the key is opened).
    private static ProxyCertificateAuthority OpenCa(ParseResult parse, Option<string?> keyFile, TrustedProxy.Audit.AuditLog? audit = null)
    {
        var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
        using var keys = AuditCommands.MasterKey(parse.GetValue(AuditCommands.Data)!, create: false);
        return ProxyCertificateAuthority.Open(paths, TimeProvider.System, parse.GetValue(keyFile), audit, Cli.CertificateRegistry(), keys);
    }
}
