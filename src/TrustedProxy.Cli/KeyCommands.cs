using System.CommandLine;
using System.Security.Cryptography;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.KeyEscrow;
using TrustedProxy.KeyRotation;
using TrustedProxy.Records;

namespace TrustedProxy.Cli;

/// <summary>
/// <c>tproxy keys …</c>: escrow of the master key (docs/key-escrow.md). <c>split</c> deals it to
/// custodians as Shamir shares, one file each, recorded in the audit log; <c>verify-shares</c>
/// checks that a set of shares rebuilds it, printing ids only. Shares are never printed or logged.
/// </summary>
internal static class KeyCommands
{
    /// <summary>Relative to where the command runs, beside the data directory rather than in it.</summary>
    public const string DefaultSharesDirectory = "key-shares";

    public static readonly Option<int> Shares = new("--shares")
    {
        Description = "How many share files to write, one per custodian (2 to 255)",
        DefaultValueFactory = _ => MasterKeyEscrow.DefaultShares,
    };

    public static readonly Option<int> Threshold = new("--threshold")
    {
        Description = "How many shares rebuild the master key (2 to --shares); fewer reveal nothing of it",
        DefaultValueFactory = _ => MasterKeyEscrow.DefaultThreshold,
    };

    public static Command Create() => new("keys", "Escrow of the master key (k-of-n shares) and rotation of the key-encryption key")
    {
        Split(),
        VerifyShares(),
        Rotate(),
        Versions(),
    };

    /// <summary>The index the server keeps in its data directory (ProxyServer).</summary>
    private static RecordIndex ExistingIndex(string data)
    {
        var path = Path.Combine(data, "proxy.db");
        return File.Exists(path)
            ? new RecordIndex(path)
            : throw new CliException($"no index '{path}' (pass --data, the proxy's data directory)", isUsage: true);
    }

    private static Command Rotate()
    {
        var defaults = new KeyRotationOptions();
        var batch = new Option<int>("--batch-size") { Description = "Rows re-wrapped per index transaction (1 to 100000)", DefaultValueFactory = _ => defaults.BatchSize };
        var auditEvery = new Option<long>("--audit-every") { Description = "Records between progress entries in the audit log", DefaultValueFactory = _ => defaults.AuditEvery };
        var passes = new Option<int>("--max-passes") { Description = "Passes over the index at most (later passes take rows that changed during the first)", DefaultValueFactory = _ => defaults.MaxPasses };
        var command = new Command("rotate", "Rotate the key-encryption key: a new version wraps new records at once, every existing data key is re-wrapped online (safe while 'tproxy serve' runs), old versions are retired; after a crash or Ctrl-C, run again to resume") { batch, auditEvery, passes, AuditCommands.Data };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var options = new KeyRotationOptions { BatchSize = parse.GetValue(batch), AuditEvery = parse.GetValue(auditEvery), MaxPasses = parse.GetValue(passes) };
            if (options.Validate().ToList() is { Count: > 0 } errors)
            {
                throw new CliException(string.Join("; ", errors), isUsage: true);
            }

            var data = parse.GetValue(AuditCommands.Data)!;
            using var keys = AuditCommands.MasterKey(data, create: false) ?? throw new CliException(AuditCommands.NoMasterKey(data));
            var index = ExistingIndex(data);
            var rotator = new KeyRotator(index, keys.KeyEncryptionKeys, options, TimeProvider.System);
            var lastShown = 0L;
            return await AuditCommands.AuditedAsync(parse, async audit =>
            {
                KeyRotationResult result;
                try
                {
                    result = await rotator.RunAsync(
                        entry => audit.AppendAsync(entry),
                        progress =>
                        {
                            if (progress.Rewrapped - lastShown >= options.AuditEvery / 10 + 1)
                            {
                                lastShown = progress.Rewrapped;
                                Console.WriteLine($"re-wrapped           {progress.Rewrapped} (pass {progress.Pass + 1})");
                            }
                        },
                        cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new CliException("stopped between two batches; run 'tproxy keys rotate' again to resume where it stopped");
                }
                var rate = result.ProcessorTime > TimeSpan.Zero ? result.Rewrapped / result.ProcessorTime.TotalSeconds : 0;
                Console.WriteLine($"{(result.Resumed ? "resumed rotation" : "rotation"),-21}to key version {result.TargetVersion}: {result.Rewrapped} data keys re-wrapped in {result.Elapsed.TotalSeconds:F1} s ({rate:F0} per CPU second), {result.Conflicts} changed meanwhile and taken again");
                if (!result.Complete)
                {
                    var which = result.Unreadable.Count > 0 ? $"; these open under no key version: {string.Join(", ", result.Unreadable.Take(10))}" : "";
                    // Returned rather than thrown, so the audit checkpoint over the run is still signed.
                    await Console.Error.WriteLineAsync($"tproxy: {(result.Remaining > 0 ? $"{result.Remaining} records are" : "a record that arrived during the last check is")} still wrapped under an older key version, which stays in use{which}; run 'tproxy keys rotate' again to resume");
                    return Cli.Failed;
                }

                Console.WriteLine(result.Retired.Count > 0
                    ? $"retired              key version {string.Join(", ", result.Retired)}: no record refers to it"
                    : "retired              nothing (no older version was in use)");
                return Cli.Ok;
            });
        });
        return command;
    }

    private static Command Versions()
    {
        var command = new Command("versions", "List the key-encryption-key versions: which wraps new records, how many records each wraps, which are retired") { AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            var store = new KeyVersionStore(ExistingIndex(parse.GetValue(AuditCommands.Data)!), TimeProvider.System);
            foreach (var version in store.Versions())
            {
                Console.WriteLine($"version {version.Version,-6} {version.State,-9} {version.Records,12} records   created {version.CreatedAt}{(version.RetiredAt is null ? "" : $"   retired {version.RetiredAt}")}");
            }

            return Task.FromResult(Cli.Ok);
        });
        return command;
    }

    /// <summary>
    /// Every reason the split asked for cannot be made, before anything is created: the parameters,
    /// and a share directory inside the data directory, where a copy or backup of the data would
    /// carry the shares along with what they protect.
    /// </summary>
    public static IReadOnlyList<string> Validate(ParseResult parse, string sharesDirectory, string sharesFlag)
    {
        var errors = MasterKeyEscrow.Validate(parse.GetValue(Threshold), parse.GetValue(Shares)).ToList();
        var data = Path.GetFullPath(parse.GetValue(AuditCommands.Data)!);
        var relative = Path.GetRelativePath(data, Path.GetFullPath(sharesDirectory));
        if (relative == "." || !(relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative)))
        {
            errors.Add($"{sharesFlag} '{sharesDirectory}' is inside the data directory '{parse.GetValue(AuditCommands.Data)}': the shares must not be kept with the key they protect");
        }

        return errors;
    }

    /// <summary>Deals a new split of <paramref name="keys"/> into <paramref name="directory"/> and records it; on any failure no share file is left behind.</summary>
    public static async Task WriteSharesAsync(ProxyKeyRing keys, int threshold, int count, string directory, AuditLog audit)
    {
        var shares = MasterKeyEscrow.Split(keys, threshold, count);
        var createdDirectory = !Directory.Exists(directory);
        var written = new List<string>();
        try
        {
            foreach (var share in shares)
            {
                var path = Path.Combine(directory, share.Source);
                KeyShareFile.Write(path, share);
                written.Add(path);
            }

            await audit.AppendAsync(AuditEvents.KeySplit(shares[0].InstallationId, shares[0].SplitId, threshold, count));
        }
        catch
        {
            foreach (var path in written)
            {
                File.Delete(path);
            }

            if (createdDirectory && Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
            {
                Directory.Delete(directory);
            }

            throw;
        }
        finally
        {
            foreach (var share in shares)
            {
                share.Dispose();
            }
        }

        foreach (var path in written)
        {
            Console.WriteLine($"created key share    {path}");
        }

        Console.WriteLine($"split                {shares[0].SplitId} of installation {shares[0].InstallationId}: any {threshold} of these {count} shares rebuild the master key");
        Console.WriteLine($"custodians           give each share to its own custodian, off this machine, and delete '{directory}' here: kept together they are the key");
    }

    private static Command Split()
    {
        var output = new Option<string>("--out") { Description = "Directory for the share files (not inside --data)", DefaultValueFactory = _ => DefaultSharesDirectory };
        var command = new Command("split", "Deal the master key to custodians as a new split: --shares files, any --threshold of which rebuild it (earlier splits stay valid)") { Shares, Threshold, output, AuditCommands.Data };
        Cli.SetAction(command, async (parse, _) =>
        {
            var directory = parse.GetValue(output)!;
            if (Validate(parse, directory, "--out") is { Count: > 0 } errors)
            {
                throw new CliException(string.Join("; ", errors), isUsage: true);
            }

            var data = parse.GetValue(AuditCommands.Data)!;
            using var keys = AuditCommands.MasterKey(data, create: false) ?? throw new CliException(AuditCommands.NoMasterKey(data));
            return await AuditCommands.AuditedAsync(parse, async audit =>
            {
                await WriteSharesAsync(keys, parse.GetValue(Threshold), parse.GetValue(Shares), directory, audit);
                return Cli.Ok;
            });
        });
        return command;
    }

    private static Command VerifyShares()
    {
        var files = new Option<string[]>("--share") { Description = "A share file; repeat for each (--share a --share b --share c)", Required = true };
        var command = new Command("verify-shares", "Check that these share files rebuild the master key (this installation's, when --data holds it) without showing it; names a bad share") { files, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            var shares = new List<KeyShare>();
            try
            {
                foreach (var file in parse.GetValue(files)!)
                {
                    shares.Add(KeyShareFile.Read(file));
                }

                var data = parse.GetValue(AuditCommands.Data)!;
                using var local = AuditCommands.MasterKey(data, create: false);
                using var recovered = MasterKeyEscrow.Recover(shares, local is null ? null : MasterKeyEscrow.InstallationId(local));
                if (recovered.Inconsistent.Count > 0)
                {
                    throw new CliException($"'{recovered.Inconsistent[0]}' does not fit the other shares of split {recovered.SplitId}: it was altered after it was written (the others rebuild the key)");
                }

                var which = local is null
                    ? $"the master key of installation {recovered.InstallationId} (no master key here to compare with)"
                    : Same(local, recovered)
                        ? $"this installation's master key ({recovered.InstallationId})"
                        : throw new CliException($"the shares rebuild a key with this installation's id ({recovered.InstallationId}) but not its master key");
                Console.WriteLine($"{shares.Count} shares of split {recovered.SplitId}, threshold {recovered.Threshold}: they recover {which}");
                return Task.FromResult(Cli.Ok);
            }
            finally
            {
                foreach (var share in shares)
                {
                    share.Dispose();
                }
            }
        });
        return command;
    }

    // The installation ids already match; comparing the keys themselves costs nothing and leaves no
    // doubt that the shares would restore this very key.
    private static bool Same(ProxyKeyRing local, RecoveredMasterKey recovered)
    {
        var key = local.ExportMasterKey();
        try
        {
            return CryptographicOperations.FixedTimeEquals(key, recovered.Key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}
