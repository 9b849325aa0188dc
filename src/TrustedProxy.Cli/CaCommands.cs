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
            RotateIntermediate(),
        };
        return command;
    }

    // The offline root's passphrase: typed or injected by the operator at the ceremony, never stored by the proxy.
    private static readonly Option<string?> RootPassphraseFile = new("--root-passphrase-file") { Description = $"A file holding the root key's passphrase (default: {OfflineRoot.PassphraseVariable}); at least {OfflineRoot.MinPassphraseLength} characters" };

    private static Command Init(Option<string?> keyFile)
    {
        var hosts = new Option<string[]>("--host") { Description = "Host names and addresses for the proxy's TLS certificate", DefaultValueFactory = _ => ["localhost", "127.0.0.1", "::1"], AllowMultipleArgumentsPerToken = true };
        var rootKeyOut = new Option<string?>("--root-key-out") { Description = "Where to write the root's private key for offline storage (encrypted under the root passphrase; not under --certs or --data); the server never needs it" }; // checked in the action: a missing one is one line, exit 2
        var command = new Command("init", $"Create an offline root (ECDSA {ProxyCertificateAuthority.RootCurve}, its key written to --root-key-out only), an online issuing intermediate and the proxy's TLS certificate; the intermediate's key is encrypted with {CaPassphrase.EnvironmentVariable} or a passphrase derived from the master key") { hosts, rootKeyOut, RootPassphraseFile, keyFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            // Everything the operator gave is checked before anything is written (the audit log and master key included).
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var data = parse.GetValue(AuditCommands.Data)!;
            var keyOut = parse.GetValue(rootKeyOut) ?? throw new CliException("pass --root-key-out <file>: where the root's key is written for offline storage", isUsage: true);
            if (File.Exists(paths.CaCertificate))
            {
                throw new CliException($"a CA already exists in '{paths.CaDirectory}'", isUsage: true);
            }

            RefuseUnderServerDirectories(keyOut, paths, data, "--root-key-out");
            if (File.Exists(keyOut))
            {
                throw new CliException($"'{keyOut}' already exists; the root key is never written over another file", isUsage: true);
            }

            var rootPassphrase = await RootPassphraseAsync(parse);
            return await AuditCommands.AuditedAsync(parse, audit =>
            {
                using var keys = AuditCommands.MasterKey(data, create: true)!;
                var issuing = CaPassphrase.ForNewKey(keys);
                var ca = ProxyCertificateAuthority.CreateWithOfflineRoot(paths, "TrustedProxy Root CA", keyOut, rootPassphrase, issuing, TimeProvider.System, audit, Cli.CertificateRegistry());
                LocalFederation.Initialize(paths, "unused", parse.GetValue(hosts)!, issuing, issueClients: false, TimeProvider.System, audit, Cli.CertificateRegistry());
                Console.WriteLine($"created root CA {paths.CaCertificate}, issuing intermediate {CertificateSerial.Of(ca.IssuingCertificate)} ({paths.IntermediateCertificate}) and server certificate {paths.ServerCertificate}");
                Console.WriteLine($"the root's key is in {keyOut} only, encrypted under the root passphrase: store it offline; it is needed only to rotate the intermediate (tproxy ca rotate-intermediate --root-key)");
                Console.WriteLine(Environment.GetEnvironmentVariable(CaPassphrase.EnvironmentVariable) is { Length: > 0 }
                    ? $"the intermediate's key is encrypted under {CaPassphrase.EnvironmentVariable}: it is needed to issue and revoke"
                    : "the intermediate's key is encrypted under a passphrase derived from the master key (recovered with its shares); nothing beside the key opens it");
                return Task.FromResult(Cli.Ok);
            });
        });
        return command;
    }

    private static Command RotateIntermediate()
    {
        var rootKey = new Option<string?>("--root-key") { Description = "The root's private key, as 'tproxy ca init --root-key-out' wrote it" }; // checked in the action
        var command = new Command("rotate-intermediate", "Have the offline root sign a new issuing intermediate; members of earlier intermediates stay valid until their certificates expire or are revoked") { rootKey, RootPassphraseFile, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var data = parse.GetValue(AuditCommands.Data)!;
            var keyFile = parse.GetValue(rootKey) ?? throw new CliException("pass --root-key <file>: the root's key as 'tproxy ca init --root-key-out' wrote it", isUsage: true);
            if (!File.Exists(paths.CaCertificate))
            {
                throw new CliException($"no CA in '{paths.CaDirectory}'; run 'tproxy ca init' first", isUsage: true);
            }

            if (!paths.HasIntermediate)
            {
                throw new CliException("this CA has no intermediate: its root issues members itself (made by 'tproxy init' or before intermediates) and cannot sign one; an offline root is a new federation ('tproxy ca init')", isUsage: true);
            }

            if (!File.Exists(keyFile))
            {
                throw new CliException($"no root key at '{keyFile}'", isUsage: true);
            }

            var rootPassphrase = await RootPassphraseAsync(parse);
            using (var root = ProxyCertificateAuthority.LoadRootCertificate(paths))
            {
                // Checked here too, so that a wrong key or passphrase writes nothing, not even an audit entry.
                OfflineRoot.Open(keyFile, rootPassphrase, root).Dispose();
            }

            return await AuditCommands.AuditedAsync(parse, audit =>
            {
                using var keys = AuditCommands.MasterKey(data, create: false) ?? throw new CliException(AuditCommands.NoMasterKey(data));
                using var previous = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(paths.IntermediateCertificate));
                var ca = ProxyCertificateAuthority.RotateIntermediate(paths, keyFile, rootPassphrase, CaPassphrase.ForNewKey(keys), TimeProvider.System, audit, Cli.CertificateRegistry());
                Console.WriteLine($"intermediate {CertificateSerial.Of(ca.IssuingCertificate)} issues from now on; {CertificateSerial.Of(previous)} stays trusted for the members it issued until {previous.NotAfter.ToUniversalTime():yyyy-MM-dd} (revoke it with 'tproxy ca revoke' to withdraw them); CRL published at {paths.Crl}");
                return Task.FromResult(Cli.Ok);
            });
        });
        return command;
    }

    private static async Task<string> RootPassphraseAsync(ParseResult parse)
    {
        var passphrase = parse.GetValue(RootPassphraseFile) is { } file
            ? File.Exists(file) ? (await File.ReadAllTextAsync(file)).TrimEnd('\r', '\n') : throw new CliException($"no passphrase file at '{file}'", isUsage: true)
            : Environment.GetEnvironmentVariable(OfflineRoot.PassphraseVariable);
        return passphrase is { Length: >= OfflineRoot.MinPassphraseLength }
            ? passphrase
            : throw new CliException($"the root key needs a passphrase of at least {OfflineRoot.MinPassphraseLength} characters: set {OfflineRoot.PassphraseVariable} or pass --root-passphrase-file", isUsage: true);
    }

    // Whoever can read the server's directories (root on the host, a backup, a snapshot) must not find the root's key.
    private static void RefuseUnderServerDirectories(string path, CertificateAuthorityPaths paths, string data, string option)
    {
        foreach (var directory in new[] { paths.Root, data })
        {
            if (OfflineRoot.IsUnder(path, directory))
            {
                throw new CliException($"{option} must be outside the server's directories ('{directory}' holds it): the root key is kept offline", isUsage: true);
            }
        }
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
            key.ImportFromEncryptedPem(TrustedProxy.Crypto.SecretFile.ReadText(paths.IssuingPrivateKey), passphrase);
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
