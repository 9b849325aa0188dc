using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Crypto;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>
/// <c>tproxy keys rotate</c> with the real executable against the data directory of a running
/// <c>tproxy serve</c>: killed with SIGKILL halfway, run again to resume, uploads going on
/// throughout; afterwards every record comes back bit-exact and no wrapped key uses the retired version.
/// </summary>
public sealed class KeyRotationCliTests
{
    // Enough rows that the first run is still re-wrapping when it is killed (batches of 100).
    private const int PaddingRecords = 60_000;

    [Fact]
    public async Task ARotationKilledHalfwayAndResumed_WhileTheServerServes_LeavesEveryRecordFetchableBitExact_AndNoKeyUnderTheRetiredVersion()
    {
        using var directory = new TemporaryDirectory();
        var port = FreePort.Next();
        WriteConfiguration(directory.Path, port);
        var database = Path.Combine(directory.Path, "data", "proxy.db");
        using var server = await ServerProcess.StartAsync(directory.Path, port);
        using var producer = Client(directory.Path, port, ProxyRole.Producer);
        using var consumer = Client(directory.Path, port, ProxyRole.Consumer);

        var uploaded = new Dictionary<string, byte[]>();
        await UploadAsync(producer, uploaded, 10, seed: 1);
        SeedPadding(directory.Path, database);

        // A bad option changes nothing: one line, exit 2, no new key version.
        var refused = await CliProcess.RunAsync(directory.Path, "keys", "rotate", "--batch-size", "0");
        Assert.Equal(2, refused.ExitCode);
        Assert.Equal("tproxy: the batch size must be 1 to 100000, not 0", refused.Error.Trim());
        Assert.Equal(1, Scalar(database, "SELECT COUNT(*) FROM key_versions"));

        // First run, killed once it has re-wrapped some but not all, while uploads go on.
        using var stop = new CancellationTokenSource();
        var during = UploadUntilStoppedAsync(producer, uploaded, stop.Token);
        using (var first = StartCli(directory.Path, "keys", "rotate", "--batch-size", "100"))
        {
            await WaitUntilAsync(() => Scalar(database, "SELECT COALESCE(MAX(rewrapped), 0) FROM key_rotations") >= 5_000, first);
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }

        Assert.Equal(0, Scalar(database, "SELECT COUNT(*) FROM key_rotations WHERE finished_at IS NOT NULL"));
        Assert.True(Scalar(database, "SELECT COUNT(*) FROM record_keys WHERE key_version = 1") > 1_000, "the first run was not killed halfway");
        Assert.Equal("Previous", Text(database, "SELECT state FROM key_versions WHERE version = 1"));

        // Records uploaded after the rotation began were wrapped under version 2 from the start.
        await UploadAsync(producer, uploaded, 3, seed: 2);
        var late = uploaded.Keys.TakeLast(3).ToList();
        Assert.All(late, h => Assert.Equal(2, Scalar(database, $"SELECT key_version FROM record_keys WHERE handle = '{h}'")));

        var resumed = await CliProcess.RunAsync(directory.Path, "keys", "rotate");
        await stop.CancelAsync();
        await during;

        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("resumed rotation     to key version 2", resumed.Output);
        Assert.Contains("retired              key version 1: no record refers to it", resumed.Output);
        Assert.Equal(0, Scalar(database, "SELECT COUNT(*) FROM record_keys WHERE key_version <> 2"));
        Assert.Equal(Scalar(database, "SELECT COUNT(*) FROM records"), Scalar(database, "SELECT COUNT(*) FROM record_keys"));
        using (var keys = ProxyKeyRing.LoadOrCreate(Path.Combine(directory.Path, "data", "keys", "master.key")))
        {
            // The headers say so too, not only the column.
            foreach (var wrapped in Blobs(database, "SELECT wrapped_key FROM record_keys"))
            {
                Assert.True(WrappedDataKey.TryReadVersion(wrapped, out var version) && version == 2);
            }
        }

        var versions = await CliProcess.RunAsync(directory.Path, "keys", "versions");
        Assert.True(versions.ExitCode == 0, versions.Error);
        Assert.Matches(@"version 1\s+Retired\s+0 records", versions.Output);
        Assert.Matches($@"version 2\s+Current\s+{PaddingRecords + uploaded.Count} records", versions.Output);

        foreach (var (handle, content) in uploaded)
        {
            using var back = new MemoryStream();
            await consumer.FetchAsync(handle, back);
            Assert.True(content.AsSpan().SequenceEqual(back.ToArray()), $"record {handle} came back different");
        }

        var audit = File.ReadAllText(Path.Combine(directory.Path, "data", "audit", "audit.log"));
        Assert.Contains("\"kind\":\"key-rotation\"", audit);
        Assert.Contains("\"step\":\"start\"", audit);
        Assert.Contains("\"step\":\"resume\"", audit);
        Assert.Contains("\"step\":\"finish\"", audit);
        var check = await CliProcess.RunAsync(directory.Path, "audit", "verify");
        Assert.True(check.ExitCode == 0, check.Output + check.Error);
        server.KillNine();
    }

    private static Process StartCli(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tproxy.dll"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, Process process)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.False(process.HasExited, "the rotation ended before it could be killed");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "the rotation made no progress in 2 minutes");
            await Task.Delay(5);
        }
    }

    /// <summary>Rows as uploads leave them, wrapped under version 1 with the installation's own key, to give the rotation something to chew on.</summary>
    private static void SeedPadding(string root, string database)
    {
        using var keys = ProxyKeyRing.LoadOrCreate(Path.Combine(root, "data", "keys", "master.key"));
        using var connection = Open(database);
        using var transaction = connection.BeginTransaction();
        for (var i = 0; i < PaddingRecords; i++)
        {
            var handle = RecordHandle.New();
            using var key = DataKey.CreateRandom();
            connection.Execute(
                """
                INSERT INTO records (handle, object_name, transfer_syntax_uid, plaintext_length, stored_length, content_sha256, origin_organisation, state, created_at)
                VALUES (@handle, @name, '1.2.840.10008.1.2.1', 10, 74, zeroblob(32), 'Elsewhere', 'Stored', '2026-01-01T00:00:00.0000000Z');
                INSERT INTO record_keys (handle, wrapped_key, key_version) VALUES (@handle, @wrapped, 1);
                """,
                new { handle, name = ObjectName.NewRandom().ToString(), wrapped = keys.KeyEncryptionKeys.Wrap(key, handle, 1) },
                transaction);
        }

        transaction.Commit();
    }

    private static async Task UploadAsync(TrustedProxyClient producer, Dictionary<string, byte[]> uploaded, int count, int seed)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var file = new DicomFileBuilder().Patient($"ROT{random.Next(1000)}", "Rotation^Test").PixelData(random.Next(1_000, 100_000), seed: random.Next()).Build();
            var receipt = await producer.UploadAsync(new MemoryStream(file));
            lock (uploaded)
            {
                uploaded.Add(receipt.Handle, file);
            }
        }
    }

    private static async Task UploadUntilStoppedAsync(TrustedProxyClient producer, Dictionary<string, byte[]> uploaded, CancellationToken stop)
    {
        var seed = 100;
        while (!stop.IsCancellationRequested)
        {
            await UploadAsync(producer, uploaded, 1, seed++);
        }
    }

    private static SqliteConnection Open(string database)
    {
        var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        connection.Execute("PRAGMA busy_timeout = 10000");
        return connection;
    }

    private static long Scalar(string database, string sql)
    {
        using var connection = Open(database);
        return connection.ExecuteScalar<long>(sql);
    }

    private static string? Text(string database, string sql)
    {
        using var connection = Open(database);
        return connection.ExecuteScalar<string>(sql);
    }

    private static List<byte[]> Blobs(string database, string sql)
    {
        using var connection = Open(database);
        return connection.Query<byte[]>(sql).ToList();
    }

    private static TrustedProxyClient Client(string root, int port, ProxyRole role) => TrustedProxyClient.FromFiles(
        new Uri($"https://127.0.0.1:{port}/"),
        Path.Combine(root, "certs", "clients", LocalFederation.ClientFileStem("Local Hospital", role) + ".p12"),
        string.Empty,
        new CertificateAuthorityPaths(Path.Combine(root, "certs")).CaCertificate);

    private static void WriteConfiguration(string root, int port)
    {
        var cache = UploadCache.UploadCacheTests.Fast.Where(p => p.Key.StartsWith("TrustedProxy:UploadCache:", StringComparison.Ordinal))
            .ToDictionary(p => p.Key.Split(':')[^1], p => (object?)(double.TryParse(p.Value, CultureInfo.InvariantCulture, out var d) ? d : bool.Parse(p.Value!)));
        var configuration = new
        {
            TrustedProxy = new
            {
                Server = new { Urls = new[] { $"https://127.0.0.1:{port}" }, HostNames = new[] { "127.0.0.1", "localhost" }, AutoInitializeCertificates = true, LocalOrganisation = "Local Hospital" },
                UploadCache = cache,
                ObliviousRetrieval = new { Schedule = "immediate", RelocationHoldSeconds = 1 },
                Storage = new { Backend = "filesystem", filesystem = new { Root = "data/cloud" } },
                Policy = new { Directory = Repository.Path("config", "policies") },
            },
            Logging = new { LogLevel = new { Default = "Warning" } },
        };
        Directory.CreateDirectory(Path.Combine(root, "config"));
        File.WriteAllText(Path.Combine(root, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));
    }
}
