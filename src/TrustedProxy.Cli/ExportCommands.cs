using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Crypto;
using TrustedProxy.Export;
using TrustedProxy.Policy;

namespace TrustedProxy.Cli;

/// <summary>
/// Export to a recipient outside the proxy's data path (docs/export.md): <c>tproxy export</c> asks
/// the proxy for a bundle encrypted to the recipient's certificate; <c>tproxy open</c>, on the
/// recipient's side, checks and decrypts it with the recipient's private key, needing no proxy.
/// </summary>
internal static class ExportCommands
{
    public static Command Export()
    {
        var to = new Option<string>("--to") { Description = "The recipient's member certificate (PEM, EC P-256, issued by this federation's CA)", Required = true };
        var records = new Option<string?>("--records") { Description = "The records to export: handles, comma-separated" };
        var study = new Option<string?>("--study") { Description = "Export a study: its Study Instance UID (as your view of it shows it)" };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the bundle (must not exist)", Required = true };
        var deidentified = new Option<bool>("--deidentified") { Description = "Ask for the de-identified view (PS3.15); research purpose gets it anyway" };
        var command = new Command("export", "Export records as a bundle only the recipient's private key opens, signed by the proxy") { to, records, study, output, deidentified };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var recipientPath = parse.GetValue(to)!;
            if (!File.Exists(recipientPath))
            {
                throw new CliException($"no recipient certificate at '{recipientPath}'", isUsage: true);
            }

            var handles = parse.GetValue(records)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            var studyUid = parse.GetValue(study);
            if ((handles.Length == 0) == string.IsNullOrWhiteSpace(studyUid))
            {
                throw new CliException("name either --records or --study", isUsage: true);
            }

            var target = parse.GetValue(output)!;
            if (Path.Exists(target))
            {
                throw new CliException($"'{target}' already exists", isUsage: true);
            }

            using var client = Cli.CreateClient(parse, ProxyRole.Consumer);
            var temporary = target + ".partial";
            try
            {
                string bundleId;
                await using (var file = new FileStream(temporary, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.Asynchronous)))
                {
                    var request = new ExportRequest(await File.ReadAllTextAsync(recipientPath, cancellationToken), handles.Length > 0 ? handles : null, handles.Length > 0 ? null : studyUid);
                    bundleId = await client.ExportAsync(request, file, parse.GetValue(deidentified), cancellationToken);
                }

                File.Move(temporary, target);
                Console.WriteLine($"{target}\t{new FileInfo(target).Length} bytes\tbundle {bundleId}");
                return Cli.Ok;
            }
            finally
            {
                File.Delete(temporary);
            }
        });
        return command;
    }

    public static Command Open()
    {
        var defaults = new ExportOptions();
        var bundle = new Argument<string>("bundle") { Description = "The bundle file received" };
        var key = new Option<string>("--key") { Description = "The recipient's private key: PEM (PKCS#8 or SEC1; encrypted PKCS#8 with --key-password-file) or a PKCS#12 credential (.p12)", Required = true };
        var password = new Option<string?>("--key-password-file") { Description = "File holding the key's password" };
        var ca = new Option<string>("--ca") { Description = "The federation's CA certificate (PEM) the proxy's signature must chain to", Required = true };
        var output = new Option<string?>("--output", "-o") { Description = "The directory to write the records into (must not exist; default: the bundle's name without extension)" };
        var maxRecords = new Option<int>("--max-records") { Description = "Refuse a bundle announcing more records", DefaultValueFactory = _ => defaults.MaxRecords };
        var maxRecordBytes = new Option<long>("--max-record-bytes") { Description = "Refuse a record larger than this", DefaultValueFactory = _ => defaults.MaxRecordBytes };
        var maxBundleBytes = new Option<long>("--max-bundle-bytes") { Description = "Refuse a bundle whose records add up to more than this", DefaultValueFactory = _ => defaults.MaxBundleBytes };
        var command = new Command("open", "Open an export bundle addressed to you: checks the proxy's signature and every record, then writes the records; nothing is written if anything fails")
        {
            bundle, key, password, ca, output, maxRecords, maxRecordBytes, maxBundleBytes,
        };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(bundle)!;
            if (!File.Exists(path))
            {
                throw new CliException($"'{path}' is not a file", isUsage: true);
            }

            var limits = defaults with
            {
                MaxRecords = Positive(parse.GetValue(maxRecords), "--max-records"),
                MaxRecordBytes = Positive(parse.GetValue(maxRecordBytes), "--max-record-bytes"),
                MaxBundleBytes = Positive(parse.GetValue(maxBundleBytes), "--max-bundle-bytes"),
            };
            using var authority = LoadCa(parse.GetValue(ca)!);
            using var privateKey = LoadKey(parse.GetValue(key)!, parse.GetValue(password));
            var target = parse.GetValue(output) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileNameWithoutExtension(path));
            await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            var opened = await new ExportBundleReader(limits, TimeProvider.System).OpenAsync(input, privateKey, authority, target, cancellationToken);
            foreach (var record in opened)
            {
                Console.WriteLine($"{record.Path}\t{record.Handle}\t{record.View}\t{record.Length} bytes");
            }

            Console.WriteLine($"{opened.Count} record(s), signed by the federation's proxy, opened into {target}");
            return Cli.Ok;
        });
        return command;
    }

    private static T Positive<T>(T value, string name)
        where T : System.Numerics.INumber<T> =>
        value > T.Zero ? value : throw new CliException($"{name} must be positive", isUsage: true);

    private static X509Certificate2 LoadCa(string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read the CA certificate '{path}': {ex.Message}");
        }
    }

    /// <summary>The recipient's private key as ECDH (a member's key is its certificate's ECDSA P-256 key).</summary>
    private static ECDiffieHellman LoadKey(string path, string? passwordFile)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"no private key at '{path}'", isUsage: true);
        }

        var password = passwordFile is null ? null : File.ReadAllText(passwordFile).TrimEnd('\r', '\n');
        var key = ECDiffieHellman.Create();
        try
        {
            if (path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase))
            {
                using var credential = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.Exportable);
                using var ecdsa = credential.GetECDsaPrivateKey() ?? throw new CliException($"'{path}' holds no EC private key");
                key.ImportPkcs8PrivateKey(ecdsa.ExportPkcs8PrivateKey(), out _);
            }
            else
            {
                // Read as a secret: a key file that others can read has leaked, and is refused.
                var pem = SecretFile.ReadText(path);
                if (pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
                {
                    key.ImportFromEncryptedPem(pem, password ?? throw new CliException($"'{path}' is encrypted: give its password with --key-password-file"));
                }
                else
                {
                    key.ImportFromPem(pem);
                }
            }

            return key;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new CliException($"cannot read the private key '{path}': wrong password, or not an EC private key");
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }
}
