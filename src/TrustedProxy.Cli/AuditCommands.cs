using System.CommandLine;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Cli;

/// <summary>
/// <c>tproxy audit …</c>: the tamper-evident audit log, on its files (works with or without a
/// running server, and on a copy of the log elsewhere). Also how the CA commands reach the log.
/// </summary>
internal static class AuditCommands
{
    public static readonly Option<string> Data = new("--data")
    {
        Description = "The proxy's data directory; the audit log is in its audit/ folder",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TPROXY_DATA") ?? "data",
    };

    public static Command Create() => new("audit", "The tamper-evident audit log: verify it, take a signed checkpoint to keep elsewhere, export its public key")
    {
        Verify(),
        Checkpoint(),
        PublicKey(),
        RotateKey(),
    };

    /// <summary>
    /// Opens the log under <paramref name="data"/> for appending as the operator at this terminal
    /// (creating it, and the master key, on first use, as the server would).
    /// </summary>
    public static AuditLog OpenAsOperator(string data)
    {
        using var keys = MasterKey(data, create: true)!;
        return AuditLog.Open(Paths(data).Directory, keys, new AuditLogOptions(), TimeProvider.System,
            new FixedAuditContext(new AuditContext(AuditActor.Operator(Environment.UserName))));
    }

    /// <summary>
    /// Runs a command that changes what the log records (the CA's issuing and revoking), as the
    /// operator, then signs a checkpoint over what it appended; a failure of either is the command's.
    /// </summary>
    public static async Task<int> AuditedAsync(ParseResult parse, Func<AuditLog, Task<int>> body)
    {
        var audit = OpenAsOperator(parse.GetValue(Data)!);
        await using (audit)
        {
            var result = await body(audit);
            await audit.CheckpointAsync();
            return result;
        }
    }

    private static Command Verify()
    {
        var log = new Option<string?>("--log") { Description = "Verify this copy of audit.log (e.g. from GET /api/v1/audit/log) instead of the data directory's" };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "A checkpoint kept elsewhere ('tproxy audit checkpoint'); the log must contain it (detects rollback)" };
        var publicKey = new Option<string?>("--public-key") { Description = "The audit public key(s) kept when the log began (PEM, 'tproxy audit public-key'): the log's first key must be one; default: the first key in audit/audit-keys.json (or, for a log not opened since it had its own key, derived from the master key)" };
        var witness = new Option<string?>("--witness") { Description = "A witness's directory or URL: the log must contain every checkpoint it holds (detects a rewrite, even one re-signed by whoever holds the master key)" };
        var command = new Command("verify", "Verify the audit log: entry hashes, the chain, checkpoint signatures and Merkle roots, the chain of audit keys, and the checkpoints it must contain") { log, checkpoint, publicKey, witness, Data };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var data = parse.GetValue(Data)!;
            var key = LoadTrust(parse.GetValue(publicKey), data);
            var external = new List<AuditAnchor>();
            if (parse.GetValue(checkpoint) is { } file)
            {
                external.Add(new AuditAnchor($"the checkpoint in '{file}'", Read(file, AuditCheckpointFile.Read), External: true));
            }

            if (parse.GetValue(witness) is { } location)
            {
                external.AddRange(await ReadWitnessAsync(location, cancellationToken));
            }

            var options = new AuditLogOptions();
            AuditVerification result;
            if (parse.GetValue(log) is { } copy)
            {
                if (!File.Exists(copy))
                {
                    throw new CliException($"no log file '{copy}'", isUsage: true);
                }

                result = AuditVerifier.Verify(copy, key, external, options.MaxEntryBytes);
            }
            else
            {
                var paths = Paths(data);
                if (!Directory.Exists(paths.Directory))
                {
                    throw new CliException($"no audit log in '{paths.Directory}'; pass --data (the proxy's data directory) or --log", isUsage: true);
                }

                result = AuditLog.VerifyDirectory(paths, key, external, options);
            }

            if (!result.Intact)
            {
                throw new CliException(result.Summary);
            }

            Console.WriteLine(result.Summary);
            return Cli.Ok;
        });
        return command;
    }

    private static async Task<IReadOnlyList<AuditAnchor>> ReadWitnessAsync(string location, CancellationToken cancellationToken)
    {
        using var http = new HttpClient();
        var witness = AuditWitnesses.Parse(location, http);
        try
        {
            return await AuditWitnesses.AnchorsAsync(witness, cancellationToken);
        }
        catch (FormatException ex)
        {
            // Something the witness holds is not a checkpoint: it was altered there.
            throw new CliException($"audit log NOT verified: {ex.Message}: the witness's copy was altered");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or HttpRequestException or TaskCanceledException)
        {
            throw new CliException($"the witness '{witness.Location}' cannot be read: {ex.Message}");
        }
    }

    private static Command RotateKey()
    {
        var command = new Command("rotate-key", "Hand the audit log over to a freshly generated signing key: the old key signs the handover and its private half is removed; old checkpoints keep verifying") { Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            var data = parse.GetValue(Data)!;
            if (!File.Exists(Paths(data).Log))
            {
                throw new CliException($"no audit log in '{Paths(data).Directory}'; pass --data (the proxy's data directory)", isUsage: true);
            }

            var audit = OpenAsOperator(data);
            AuditCheckpoint checkpoint;
            var before = audit.PublicKey.KeyId;
            await using (audit)
            {
                checkpoint = await audit.RotateKeyAsync();
            }

            Console.WriteLine($"audit key {before} handed over to {checkpoint.KeyId}, whose first checkpoint covers {checkpoint.Size} entries; export the keys again with 'tproxy audit public-key'");
            return Cli.Ok;
        });
        return command;
    }

    private static Command Checkpoint()
    {
        var output = new Option<string?>("--output", "-o") { Description = "Write the checkpoint to this file (default: standard output)" };
        var command = new Command("checkpoint", "Sign a checkpoint over the whole audit log now and print it, to keep somewhere the proxy's operators cannot change") { output, Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            var data = parse.GetValue(Data)!;
            if (!File.Exists(Paths(data).Log))
            {
                throw new CliException($"no audit log in '{Paths(data).Directory}'; pass --data (the proxy's data directory)", isUsage: true);
            }

            var audit = OpenAsOperator(data);
            AuditCheckpoint? checkpoint;
            await using (audit)
            {
                checkpoint = await audit.CheckpointAsync();
            }

            var json = AuditCheckpointFile.ToJson(checkpoint ?? throw new CliException("the audit log is empty: nothing to sign"));
            if (parse.GetValue(output) is { } file)
            {
                await File.WriteAllTextAsync(file, json);
                Console.WriteLine($"checkpoint of {checkpoint.Size} entries written to {file}");
            }
            else
            {
                Console.Write(json);
            }

            return Cli.Ok;
        });
        return command;
    }

    private static Command PublicKey()
    {
        var output = new Option<string?>("--output", "-o") { Description = "Write the key to this file (default: standard output)" };
        var command = new Command("public-key", "Print the audit keys' public halves (PEM, first to current), for verifying checkpoints without any secret; keep the first") { output, Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            var data = parse.GetValue(Data)!;
            IReadOnlyList<AuditPublicKey> all;
            if (File.Exists(AuditKeyStore.PathIn(Paths(data))))
            {
                all = Read(AuditKeyStore.PathIn(Paths(data)), _ => AuditKeyStore.PublicKeys(Paths(data)));
            }
            else
            {
                using var keys = MasterKey(data, create: false) ?? throw new CliException(NoMasterKey(data));
                using var legacy = AuditSigningKey.DeriveLegacy(keys);
                all = [legacy.PublicKey];
            }

            var pem = string.Concat(all.Select(k => k.Pem));
            if (parse.GetValue(output) is { } file)
            {
                await File.WriteAllTextAsync(file, pem);
                Console.WriteLine($"audit public key(s) {string.Join(", ", all.Select(k => k.KeyId))} written to {file}");
            }
            else
            {
                Console.Write(pem);
            }

            return Cli.Ok;
        });
        return command;
    }

    private static AuditLogPaths Paths(string data) => new(Path.GetFullPath(Path.Combine(data, "audit")));

    private static AuditKeyTrust LoadTrust(string? file, string data)
    {
        if (file is not null)
        {
            return Read(file, path => AuditKeyTrust.FromPem(File.ReadAllText(path)));
        }

        var paths = Paths(data);
        if (File.Exists(AuditKeyStore.PathIn(paths)))
        {
            return Read(AuditKeyStore.PathIn(paths), _ => AuditKeyStore.LocalTrust(paths, null));
        }

        using var keys = MasterKey(data, create: false) ?? throw new CliException(NoMasterKey(data) + "; or pass --public-key");
        return AuditKeyStore.LocalTrust(paths, keys);
    }

    private static T Read<T>(string path, Func<string, T> read)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"no file '{path}'", isUsage: true);
        }

        try
        {
            return read(path);
        }
        catch (FormatException ex)
        {
            throw new CliException($"'{path}': {ex.Message}");
        }
    }

    public static string NoMasterKey(string data) =>
        $"no master key: neither {ProxyServer.MasterKeyVariable} nor '{MasterKeyPath(data)}' (pass --data, the proxy's data directory)";

    /// <summary>Where the server keeps its master key when the environment does not carry it.</summary>
    public static string MasterKeyPath(string data) => Path.Combine(data, "keys", "master.key");

    // As the server finds it: the environment first, then the key file in the data directory.
    public static ProxyKeyRing? MasterKey(string data, bool create)
    {
        if (Environment.GetEnvironmentVariable(ProxyServer.MasterKeyVariable) is { Length: > 0 } base64)
        {
            return ProxyKeyRing.FromBase64(base64);
        }

        var path = MasterKeyPath(data);
        if (!create && !File.Exists(path))
        {
            return null;
        }

        SecretFile.EnsurePrivateDirectory(data);
        return ProxyKeyRing.LoadOrCreate(path);
    }
}
