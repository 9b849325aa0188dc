using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using TrustedProxy.Audit;
using TrustedProxy.Backup;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Crypto;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>
/// Recovery from nothing of an installation holding <c>--records</c> records (default 100,000):
/// the state a proxy would have after that many uploads (index rows of records and their released
/// blocks through the production <see cref="RecordIndex"/>, one signed audit entry per upload
/// through the production <see cref="AuditLog"/>, a CA, the master key split 3 of 5 by
/// <c>tproxy keys split</c>), one backup generation shipped object by object into a filesystem
/// backend as the dummy slots would, then the data and certificates directories deleted and
/// <c>tproxy recover</c> run as a separate process with three share files, timed (wall, CPU, peak
/// memory). The peer, in the same run: the same two directories restored from an encrypted tar
/// archive (<c>openssl enc -d -aes-256-ctr | tar -x</c>), the plain backup a site would otherwise keep.
/// </summary>
internal static class BackupRecoveryBenchmark
{
    private const int BlockSize = 128 * 1024;

    public static async Task<int> RunAsync(string[] args)
    {
        var records = args.SkipWhile(a => a != "--records").Skip(1).FirstOrDefault() is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 100_000;
        var site = Path.Combine(Path.GetTempPath(), "tproxy-recovery-" + Guid.NewGuid().ToString("N")[..8]);
        var data = Path.Combine(site, "data");
        var certs = Path.Combine(site, "certs");
        var cloud = Path.Combine(site, "cloud");
        try
        {
            Directory.CreateDirectory(site);
            WriteConfiguration(site);
            var watch = Stopwatch.StartNew();
            using (var keys = ProxyKeyRing.FromBytes(RandomNumberGenerator.GetBytes(ProxyKeyRing.MasterKeyBytes)))
            {
                SecretFile.EnsurePrivateDirectory(data);
                SecretFile.EnsurePrivateDirectory(Path.Combine(data, "keys"));
                ProxyKeyRing.WriteKeyFile(Path.Combine(data, "keys", "master.key"), keys.ExportMasterKey());
                await PopulateAsync(data, certs, keys, records);
                Console.WriteLine(F($"# state of {records} records built in {watch.Elapsed.TotalSeconds:F0} s"));
            }

            var split = await RunAsync(site, "dotnet", [Tproxy, "keys", "split", "--data", "data", "--out", "key-shares"]);
            if (split.ExitCode != 0)
            {
                throw new InvalidOperationException("tproxy keys split failed: " + split.Error);
            }

            var shares = Directory.GetFiles(Path.Combine(site, "key-shares")).Order(StringComparer.Ordinal).ToArray();
            var indexBytes = new FileInfo(Path.Combine(data, "proxy.db")).Length;
            var auditBytes = new FileInfo(Path.Combine(data, "audit", "audit.log")).Length;

            watch.Restart();
            var objects = await ShipGenerationAsync(data, certs, cloud);
            Console.WriteLine(F($"# generation of {objects} objects shipped in {watch.Elapsed.TotalSeconds:F0} s"));

            // The peer's archive, made before the loss (not timed).
            var archive = Path.Combine(site, "peer.tar.enc");
            var packed = await RunAsync(site, "sh", ["-c", $"tar -cf - data certs | openssl enc -aes-256-ctr -pbkdf2 -pass pass:benchmark -out '{archive}'"]);
            if (packed.ExitCode != 0)
            {
                throw new InvalidOperationException("tar | openssl failed: " + packed.Error);
            }

            Directory.Delete(data, recursive: true);
            Directory.Delete(certs, recursive: true);
            var recover = await TimedAsync(site, "dotnet", [Tproxy, "recover", "--share", shares[0], "--share", shares[2], "--share", shares[4], "--data", "data", "--certs", "certs"]);
            if (recover.ExitCode != 0)
            {
                throw new InvalidOperationException("tproxy recover failed: " + recover.Error + recover.Output);
            }

            Directory.CreateDirectory(Path.Combine(site, "peer"));
            var peer = await TimedAsync(Path.Combine(site, "peer"), "sh", ["-c", $"openssl enc -d -aes-256-ctr -pbkdf2 -pass pass:benchmark -in '{archive}' | tar -xf -"]);
            if (peer.ExitCode != 0)
            {
                throw new InvalidOperationException("openssl | tar failed: " + peer.Error);
            }

            var restored = recover.Output.Split('\n').Where(l => l.StartsWith("records", StringComparison.Ordinal) || l.Contains("audit log", StringComparison.Ordinal)).Select(l => l.Trim());
            var streamBytes = (long)objects * BlockSize;
            Console.WriteLine();
            Console.WriteLine(F($"{records} records: index {indexBytes / 1048576.0:F1} MiB, audit log {auditBytes / 1048576.0:F1} MiB, generation {objects} objects ({streamBytes / 1048576.0:F0} MiB); {Environment.ProcessorCount} cores"));
            Console.WriteLine();
            Console.WriteLine("| restore | wall | CPU (user + kernel) | peak RSS | records/s | MiB/s (backup objects read) |");
            Console.WriteLine("|---|---|---|---|---|---|");
            Console.WriteLine(F($"| `tproxy recover` (3 of 5 shares, filesystem backend) | {recover.Wall:F2} s | {recover.User + recover.Kernel:F2} s | {recover.PeakKiB / 1024.0:F0} MiB | {records / recover.Wall:F0} | {streamBytes / 1048576.0 / recover.Wall:F0} |"));
            Console.WriteLine(F($"| peer: `openssl enc -d -aes-256-ctr \\| tar -x` of the same directories | {peer.Wall:F2} s | {peer.User + peer.Kernel:F2} s | {peer.PeakKiB / 1024.0:F0} MiB | {records / peer.Wall:F0} | — |"));
            Console.WriteLine();
            Console.WriteLine(F($"recover / peer: {recover.Wall / peer.Wall:F1}× wall"));
            Console.WriteLine("recover reported: " + string.Join("; ", restored));
            return 0;
        }
        finally
        {
            if (Directory.Exists(site))
            {
                Directory.Delete(site, recursive: true);
            }
        }
    }

    private static string Tproxy => Path.Combine(AppContext.BaseDirectory, "tproxy.dll");

    // As after that many uploads: each record with its study, series and instance, two released blocks, one signed audit entry.
    private static async Task PopulateAsync(string data, string certs, ProxyKeyRing keys, int records)
    {
        var index = new RecordIndex(Path.Combine(data, "proxy.db"));
        var time = TimeProvider.System;
        await using var audit = AuditLog.Open(Path.Combine(data, "audit"), keys, new AuditLogOptions(), time, new FixedAuditContext(new AuditContext(AuditActor.Operator("benchmark"))));
        ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(certs), "Benchmark Root", passphrase: null, time, audit);
        var random = new Random(1);
        var at = time.GetUtcNow().AddDays(-30);
        var appends = new List<Task>();
        for (var i = 0; i < records; i++)
        {
            var study = i / 200;
            var handle = RecordHandle.New();
            var entry = new RecordEntry
            {
                Handle = handle,
                ObjectName = ObjectName.NewRandom(),
                WrappedKey = RandomNumberGenerator.GetBytes(61),
                PatientPseudonym = Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(study / 3))),
                StudyInstanceUid = F($"1.2.826.0.1.3680043.8.498.{study}"),
                SeriesInstanceUid = F($"1.2.826.0.1.3680043.8.498.{study}.{i % 4}"),
                SopInstanceUid = F($"1.2.826.0.1.3680043.8.498.{study}.{i % 4}.{i}"),
                SopClassUid = "1.2.840.10008.5.1.4.1.1.2",
                Modality = "CT",
                StudyDate = new DateOnly(2026, 11, 1),
                TransferSyntaxUid = "1.2.840.10008.1.2.1",
                PlaintextLength = 2 * BlockSize - 500,
                StoredLength = 2 * BlockSize,
                ContentSha256 = RandomNumberGenerator.GetBytes(32),
                OriginOrganisation = "Benchmark Hospital",
                State = RecordState.Stored,
                CreatedAt = at.AddSeconds(i),
            };
            var blocks = Enumerable.Range(0, 2).Select(b => new CacheBlock
            {
                ObjectName = ObjectName.NewRandom(),
                Handle = handle,
                BlockIndex = b,
                Length = BlockSize,
                Kind = BlockKind.Real,
                State = BlockState.Released,
                AdmittedAt = entry.CreatedAt,
                DueAt = BlockIndex.Never,
                GroupId = random.NextInt64(records / 4),
            }).ToList();
            await index.InsertAsync(entry, blocks);
            appends.Add(audit.AppendAsync(AuditEvents.Upload(entry)));
            if (appends.Count == 512)
            {
                await Task.WhenAll(appends);
                appends.Clear();
            }
        }

        await Task.WhenAll(appends);
    }

    // The dummy slots, reduced to what matters here: each object of one generation put once, in order.
    private static async Task<int> ShipGenerationAsync(string data, string certs, string cloud)
    {
        using var keys = ProxyKeyRing.LoadOrCreate(Path.Combine(data, "keys", "master.key"));
        using var backupKeys = BackupKeys.From(keys);
        using var metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var shipper = new BackupShipper(
            Path.Combine(data, "backup"),
            new BackupSnapshotTaker(data, certs, TimeSpan.FromSeconds(5)),
            new BackupGenerationWriter(new BackupObjectSealer(backupKeys, BlockSize)),
            Microsoft.Extensions.Options.Options.Create(new BackupOptions { Enabled = true }),
            BlockSize,
            TimeProvider.System,
            metrics.GetRequiredService<IMeterFactory>(),
            NullLogger<BackupShipper>.Instance)
        {
            NameOf = backupKeys.NameOf,
        };
        if (await shipper.StageIfDueAsync(CancellationToken.None) is null)
        {
            throw new InvalidOperationException("no generation was staged");
        }

        var store = new FileSystemObjectStore(cloud);
        var objects = 0;
        while (shipper.Peek(BlockSize) is { } payload)
        {
            await using (var content = payload.Open())
            {
                await store.PutIfAbsentAsync(payload.Name, content, payload.Length, CancellationToken.None);
            }

            shipper.Shipped(payload);
            objects++;
        }

        if (shipper.Status().NewestComplete is null)
        {
            throw new InvalidOperationException("the generation did not complete");
        }

        return objects;
    }

    private static void WriteConfiguration(string site)
    {
        var configuration = new Dictionary<string, object?>
        {
            ["TrustedProxy"] = new Dictionary<string, object?>
            {
                ["Storage"] = new Dictionary<string, object?> { ["Backend"] = "filesystem", ["filesystem"] = new Dictionary<string, object?> { ["Root"] = "cloud" } },
                ["UploadCache"] = new Dictionary<string, object?> { ["Enabled"] = "true", ["BlockSizeBytes"] = BlockSize.ToString(CultureInfo.InvariantCulture) },
                ["Backup"] = new Dictionary<string, object?> { ["Enabled"] = "true" },
            },
            ["Logging"] = new Dictionary<string, object?> { ["LogLevel"] = new Dictionary<string, object?> { ["Default"] = "Warning" } },
        };
        Directory.CreateDirectory(Path.Combine(site, "config"));
        File.WriteAllText(Path.Combine(site, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));
    }

    private sealed record Timed(int ExitCode, string Output, string Error, double Wall, double User, double Kernel, long PeakKiB);

    // Under /usr/bin/time, for the child's CPU and peak resident set.
    private static async Task<Timed> TimedAsync(string directory, string program, IReadOnlyList<string> arguments)
    {
        var times = Path.Combine(Path.GetTempPath(), "time-" + Guid.NewGuid().ToString("N"));
        var watch = Stopwatch.StartNew();
        var run = await RunAsync(directory, "/usr/bin/time", ["-o", times, "-f", "%U %S %M", program, .. arguments]);
        var wall = watch.Elapsed.TotalSeconds;
        var figures = File.ReadAllLines(times).Last().Split(' ');
        File.Delete(times);
        return new Timed(run.ExitCode, run.Output, run.Error, wall, double.Parse(figures[0], CultureInfo.InvariantCulture), double.Parse(figures[1], CultureInfo.InvariantCulture), long.Parse(figures[2], CultureInfo.InvariantCulture));
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(string directory, string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await error);
    }

    private static string F(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
}
