using System.CommandLine;
using System.Globalization;
using TrustedProxy.Audit;
using TrustedProxy.Backup;
using TrustedProxy.Crypto;
using TrustedProxy.KeyEscrow;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Cli;

/// <summary>
/// <c>tproxy recover</c> (a proxy from nothing: custodians' shares and the backend) and
/// <c>tproxy backup status|verify</c> (docs/backup-and-recovery.md). Every refusal is one line on
/// standard error, a non-zero exit, and nothing written.
/// </summary>
internal static class BackupCommands
{
    private static readonly Option<string?> Config = new("--config") { Description = "Configuration file, as serve takes it (default: config/appsettings.json when present)" };
    private static readonly Option<string?> Backend = new("--backend") { Description = "Storage backend: filesystem, azure-blob or s3; overrides the configuration" };

    public static Command Recover()
    {
        var shares = new Option<string[]>("--share") { Description = "A custodian's share file; repeat for each (--share a --share b --share c)", Required = true };
        var data = new Option<string>("--data") { Description = "The new data directory (absent or empty)", Required = true };
        var certs = new Option<string>("--certs") { Description = "The new certificates directory (absent or empty)", Required = true };
        var command = new Command("recover", "Rebuild a lost proxy from k custodians' shares and the newest complete backup in the backend, into new directories") { shares, data, certs, Config, Backend };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var dataTarget = parse.GetValue(data)!;
            var certsTarget = parse.GetValue(certs)!;
            if ((BackupRecovery.RefuseTarget(dataTarget, "--data") ?? BackupRecovery.RefuseTarget(certsTarget, "--certs")) is { } refusal)
            {
                throw new CliException(refusal);
            }

            if (Path.GetFullPath(dataTarget) == Path.GetFullPath(certsTarget))
            {
                throw new CliException("--data and --certs must be different directories");
            }

            using var keys = RecoverKey(parse.GetValue(shares)!, out var installation);
            var (store, blockSize) = await OpenBackendAsync(parse, cancellationToken);
            var recovery = new BackupRecovery(store, keys, blockSize, TimeProvider.System);
            var found = await recovery.FindAsync(cancellationToken) ?? throw new CliException($"no complete backup of installation {installation} in the {store.Name} backend");
            var report = await recovery.RecoverAsync(found, dataTarget, certsTarget, cancellationToken);

            // The restored chain goes on, and says first that it was restored and from which point.
            await using (var audit = AuditCommands.OpenAsOperator(report.DataDirectory))
            {
                await audit.AppendAsync(AuditEvents.BackupRestored(installation, report.Generation, report.BackupPoint, report.Records));
                await audit.CheckpointAsync();
            }

            Print(report, "restored generation");
            Console.WriteLine($"data                 {report.DataDirectory}");
            Console.WriteLine($"certs                {report.CertsDirectory}");
            Console.WriteLine($"not covered          uploads acknowledged after the backup point {report.BackupPoint:O} are not in this backup; ask the hospitals to send them again");
            return Cli.Ok;
        });
        return command;
    }

    public static Command Create() => new("backup", "The continuous backup through the cloud's dummy slots: how far behind it is, and a trial restore")
    {
        Status(),
        Verify(),
    };

    private static Command Status()
    {
        var command = new Command("status", "How far behind the backup is: the newest complete generation, its backup point, objects waiting for dummy slots") { AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            var directory = Path.Combine(parse.GetValue(AuditCommands.Data)!, "backup");
            var state = BackupState.Read(directory) ?? throw new CliException($"no backup state in '{directory}': the backup has not run here (TrustedProxy:Backup:Enabled)");
            var now = DateTimeOffset.UtcNow;
            if (state.LastComplete is { } last)
            {
                Console.WriteLine($"newest complete      generation {last.Generation}, snapshot {last.CreatedAt:O}, complete since {last.CompletedAt:O}");
                var increment = state.LastIncrement;
                Console.WriteLine(increment is null
                    ? "increments           none committed on it yet"
                    : $"increments           {increment.Increment + 1} committed on it, the newest ({increment.Increment}) taken {increment.CreatedAt:O}, committed {increment.CommittedAt:O}");
                if (state.Chain is { Staged: { } shipping } current && current.Generation == last.Generation)
                {
                    Console.WriteLine($"shipping increment   {shipping.Increment}: {shipping.Shipped} of {shipping.Objects} objects in the backend");
                }

                var point = state.BackupPoint!.Value;
                Console.WriteLine($"backup point         {point:O}{(point > (increment?.CreatedAt ?? last.CreatedAt) ? " (the previous generation's increments, until this one's reach further)" : "")}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lag                  {(now - point).TotalSeconds:F0} s"));
            }
            else
            {
                Console.WriteLine("newest complete      none yet");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lag                  {(now - state.Since).TotalSeconds:F0} s (since the backup started)"));
            }

            Console.WriteLine(state.Staged is { } staged
                ? $"shipping             generation {staged.Generation}: {staged.Shipped} of {staged.Objects} objects in the backend, {staged.Objects - staged.Shipped} waiting for dummy slots"
                : "shipping             nothing (the next generation starts when the interval has passed)");
            return Task.FromResult(Cli.Ok);
        });
        return command;
    }

    private static Command Verify()
    {
        var command = new Command("verify", "Restore the newest complete backup into a scratch directory and check it (audit chain, CA key, record count), without touching the running proxy") { AuditCommands.Data, Config, Backend };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var data = parse.GetValue(AuditCommands.Data)!;
            using var keys = AuditCommands.MasterKey(data, create: false) ?? throw new CliException(AuditCommands.NoMasterKey(data));
            var (store, blockSize) = await OpenBackendAsync(parse, cancellationToken);
            var recovery = new BackupRecovery(store, keys, blockSize, TimeProvider.System);
            var found = await recovery.FindAsync(cancellationToken) ?? throw new CliException($"no complete backup of installation {MasterKeyEscrow.InstallationId(keys)} in the {store.Name} backend");
            var scratch = Path.Combine(Path.GetTempPath(), "tproxy-backup-verify-" + Guid.NewGuid().ToString("N"));
            SecretFile.EnsurePrivateDirectory(scratch);
            try
            {
                var report = await recovery.RecoverAsync(found, Path.Combine(scratch, "data"), Path.Combine(scratch, "certs"), cancellationToken);
                Print(report, "verified generation");
                return Cli.Ok;
            }
            finally
            {
                Directory.Delete(scratch, recursive: true);
            }
        });
        return command;
    }

    private static void Print(RecoveryReport report, string verb)
    {
        var m = report.Manifest;
        var increments = report.Increments;
        Console.WriteLine($"{verb,-20} {report.Generation} (snapshot {m.CreatedAt:O}; {m.DataObjects + 1} objects, {report.Entries} files)");
        Console.WriteLine(increments.Last is { } last
            ? $"increments           {increments.Applied.Count} replayed (0 … {last.Increment}), the last taken {last.CreatedAt:O}"
            : "increments           none committed on this generation");
        if (increments.Gap is { } gap)
        {
            Console.WriteLine($"                     increment {gap} is missing from the backend while increment {increments.LaterCommitted} is committed: the replay ended at the last complete one before it; later increments were not applied");
        }

        Console.WriteLine($"backup point         {report.BackupPoint:O}");
        if (increments.Handles.Count > 0)
        {
            Console.WriteLine($"from increments      {increments.Handles.Count} waiting upload(s) restored: {string.Join(", ", increments.Handles)}");
        }

        Console.WriteLine($"records              {report.Records}");
        Console.WriteLine($"waiting blocks       {report.WaitingBlocks} (their ciphertext restored; released on the schedule after start)");
        Console.WriteLine($"queued relocations   {m.QueuedRelocations}");
        Console.WriteLine($"audit                {report.Audit.Summary}");
        Console.WriteLine("certificate authority the CA key decrypts and matches the CA certificate");
    }

    private static ProxyKeyRing RecoverKey(string[] files, out string installation)
    {
        var shares = new List<KeyShare>();
        try
        {
            foreach (var file in files)
            {
                shares.Add(KeyShareFile.Read(file));
            }

            using var recovered = MasterKeyEscrow.Recover(shares);
            if (recovered.Inconsistent.Count > 0)
            {
                throw new CliException($"'{recovered.Inconsistent[0]}' does not fit the other shares of split {recovered.SplitId}: it was altered after it was written");
            }

            installation = recovered.InstallationId;
            return recovered.ToKeyRing();
        }
        finally
        {
            foreach (var share in shares)
            {
                share.Dispose();
            }
        }
    }

    private static Task<(Storage.IObjectStore Store, int BlockSize)> OpenBackendAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var overrides = new Dictionary<string, string?>();
        if (parse.GetValue(Backend) is { } name)
        {
            overrides["TrustedProxy:Storage:Backend"] = name;
        }

        var configFile = parse.GetValue(Config) ?? (File.Exists(Path.Combine("config", "appsettings.json")) ? Path.Combine("config", "appsettings.json") : null);
        return ProxyServer.OpenBackendAsync(new ProxyServerSettings { ContentRoot = Directory.GetCurrentDirectory(), ConfigurationFile = configFile, Overrides = overrides }, cancellationToken);
    }
}
