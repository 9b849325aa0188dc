using System.Globalization;
using System.Text.Json;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Backup;

/// <summary>
/// The disaster drill on the real server process with the filesystem backend (the cloud a directory
/// beside, not inside, the data directory): records uploaded, some released to the cloud and some
/// still waiting in the upload cache, a certificate revoked; the backup catches up in dummy slots;
/// the proxy is killed with SIGKILL and its data and certificates directories deleted; <c>tproxy
/// recover</c> with three of the five custodians' shares rebuilds them; the restarted proxy serves
/// every record bit-exact, its audit log verifies, the revoked certificate is still refused.
/// Refusals (two shares, an altered share, no backup, a non-empty target) write nothing.
/// </summary>
public abstract class DisasterDrill
{
    /// <summary>The backend's settings, as flat configuration keys.</summary>
    protected abstract IReadOnlyDictionary<string, string?> Backend { get; }

    [Fact]
    public async Task AfterTheLossOfDataAndCertificates_RecoverWithThreeOfFiveShares_RestoresEveryRecordBitExact_TheAuditChain_AndTheRevocations()
    {
        using var site = new TemporaryDirectory();
        var port = FreePort.Next();
        WriteConfiguration(site.Path, port, held: false);
        var init = await CliProcess.RunAsync(site.Path, "init");
        Assert.True(init.ExitCode == 0, init.Error);
        var shares = Directory.GetFiles(Path.Combine(site.Path, "key-shares")).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(5, shares.Length);
        var records = new Dictionary<string, byte[]>();

        // Phase 1: records that reach the cloud, and a member's certificate revoked.
        using (var server = await ServerProcess.StartAsync(site.Path, port))
        {
            using var producer = Client(site.Path, port, ProxyRole.Producer);
            await UploadAsync(producer, records, 4, "RELEASED");
            var issued = await CliProcess.RunAsync(site.Path, "ca", "issue", "--org", "Haukeland", "--role", "consumer", "--days", "30");
            Assert.True(issued.ExitCode == 0, issued.Error);
            var revoked = await CliProcess.RunAsync(site.Path, "ca", "revoke", issued.Output.Split('\t')[0], "--reason", "key-compromise");
            Assert.True(revoked.ExitCode == 0, revoked.Error);
            using var admin = Client(site.Path, port, ProxyRole.Admin);
            await WaitForAsync(admin, h => h.GetProperty("upload-cache").GetProperty("data").GetProperty("waitingBlocks").GetInt32() == 0, "every block released");
            server.KillNine();
        }

        // Phase 2: a schedule that holds real blocks (every slot a dummy), more records left waiting.
        WriteConfiguration(site.Path, port, held: true);
        using (var server = await ServerProcess.StartAsync(site.Path, port))
        {
            using var producer = Client(site.Path, port, ProxyRole.Producer);
            await UploadAsync(producer, records, 3, "WAITING");
            var acknowledged = DateTimeOffset.UtcNow;
            using var admin = Client(site.Path, port, ProxyRole.Admin);
            await WaitForAsync(admin, h => h.GetProperty("backup").GetProperty("data").TryGetProperty("backupPoint", out var point)
                && DateTimeOffset.Parse(point.GetString()!, CultureInfo.InvariantCulture) > acknowledged, "a complete generation taken after the last upload");
            var health = await HealthAsync(admin);
            Assert.True(health.GetProperty("upload-cache").GetProperty("data").GetProperty("waitingBlocks").GetInt32() > 0, "no block was waiting at the kill");

            // The administrator's view, and a trial restore beside the running proxy.
            var status = await CliProcess.RunAsync(site.Path, "backup", "status");
            Assert.True(status.ExitCode == 0, status.Error);
            Assert.Matches("newest complete      generation [0-9]+, snapshot ", status.Output);
            var verify = await CliProcess.RunAsync(site.Path, "backup", "verify");
            Assert.True(verify.ExitCode == 0, verify.Error + verify.Output);
            Assert.Contains("verified generation", verify.Output);
            Assert.Contains("audit log intact", verify.Output);
            server.KillNine();
        }

        // Phase 3: no new generation for an hour; an upload acknowledged after the last full generation
        // is covered by an increment soon after its 202.
        WriteConfiguration(site.Path, port, held: true, intervalSeconds: 3600);
        string late;
        using (var server = await ServerProcess.StartAsync(site.Path, port))
        {
            using var admin = Client(site.Path, port, ProxyRole.Admin);

            // A generation staged before the kill finishes first; none follows it within the hour.
            await WaitForAsync(admin, h => !h.GetProperty("backup").GetProperty("data").TryGetProperty("shippingGeneration", out _), "no generation being shipped");
            var generation = (await HealthAsync(admin)).GetProperty("backup").GetProperty("data").GetProperty("newestCompleteGeneration").GetInt64();
            using var producer = Client(site.Path, port, ProxyRole.Producer);
            var before = records.Keys.ToHashSet();
            await UploadAsync(producer, records, 1, "LATE");
            late = records.Keys.Single(k => !before.Contains(k));
            var acknowledged = DateTimeOffset.UtcNow;
            await WaitForAsync(admin, h => h.GetProperty("backup").GetProperty("data") is var d && d.TryGetProperty("lastIncrement", out _)
                && DateTimeOffset.Parse(d.GetProperty("backupPoint").GetString()!, CultureInfo.InvariantCulture) > acknowledged, "an increment taken after the late upload, committed");
            var backup = (await HealthAsync(admin)).GetProperty("backup").GetProperty("data");
            Assert.Equal(generation, backup.GetProperty("newestCompleteGeneration").GetInt64());
            var status = await CliProcess.RunAsync(site.Path, "backup", "status");
            Assert.True(status.ExitCode == 0, status.Error);
            Assert.Matches("increments           [0-9]+ committed on it", status.Output);
            server.KillNine();
        }

        var auditBefore = await File.ReadAllTextAsync(Path.Combine(site.Path, "data", "audit", "audit.log"));
        Directory.Delete(Path.Combine(site.Path, "data"), recursive: true);
        Directory.Delete(Path.Combine(site.Path, "certs"), recursive: true);

        var recover = await CliProcess.RunAsync(site.Path, "recover", "--share", shares[0], "--share", shares[2], "--share", shares[4], "--data", "data", "--certs", "certs");

        Assert.True(recover.ExitCode == 0, recover.Error + recover.Output);
        Assert.Contains("records              8", recover.Output);
        Assert.Matches("increments           [0-9]+ replayed", recover.Output);
        Assert.Contains($"waiting upload(s) restored: ", recover.Output);
        Assert.Contains(late, recover.Output);
        Assert.Matches("waiting blocks       [1-9]", recover.Output);
        Assert.Contains("audit log intact", recover.Output);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(site.Path, "data")));
        var auditAfter = await File.ReadAllTextAsync(Path.Combine(site.Path, "data", "audit", "audit.log"));
        Assert.StartsWith(auditBefore[..200], auditAfter, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"backup-restored\"", auditAfter);

        using (var server = await ServerProcess.StartAsync(site.Path, port))
        {
            using var consumer = Client(site.Path, port, ProxyRole.Consumer);
            foreach (var (handle, content) in records)
            {
                using var back = new MemoryStream();
                await consumer.FetchAsync(handle, back);
                Assert.True(content.AsSpan().SequenceEqual(back.ToArray()), $"record {handle} came back different");
            }

            var refused = await CliProcess.RunAsync(site.Path, "whoami", "--server", $"https://127.0.0.1:{port}", "--cert", Path.Combine(site.Path, "certs", "clients", "haukeland-consumer.p12"));
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("refused", refused.Error);
            var member = await CliProcess.RunAsync(site.Path, "whoami", "--server", $"https://127.0.0.1:{port}", "--as", "consumer");
            Assert.True(member.ExitCode == 0, member.Error);

            // The restored CA key issues under the same root.
            var issued = await CliProcess.RunAsync(site.Path, "ca", "issue", "--org", "Bergen", "--role", "consumer", "--days", "30");
            Assert.True(issued.ExitCode == 0, issued.Error);
            var newcomer = await CliProcess.RunAsync(site.Path, "whoami", "--server", $"https://127.0.0.1:{port}", "--cert", Path.Combine(site.Path, "certs", "clients", "bergen-consumer.p12"));
            Assert.True(newcomer.ExitCode == 0, newcomer.Error);
            server.KillNine();
        }

        // The restored waiting blocks leave on the schedule, and every record then comes from the cloud.
        WriteConfiguration(site.Path, port, held: false);
        using (var server = await ServerProcess.StartAsync(site.Path, port))
        {
            using var admin = Client(site.Path, port, ProxyRole.Admin);
            // A record's cache file is removed just after its last block is marked released: wait for both.
            var staging = Path.Combine(site.Path, "data", "staging");
            await WaitForAsync(admin, h => h.GetProperty("upload-cache").GetProperty("data").GetProperty("waitingBlocks").GetInt32() == 0 && Directory.GetFiles(staging, "*.tpx").Length == 0, "the restored waiting blocks released and their cache files removed");
            Assert.Empty(Directory.GetFiles(staging, "*.tpx"));
            using var consumer = Client(site.Path, port, ProxyRole.Consumer);
            foreach (var (handle, content) in records)
            {
                using var back = new MemoryStream();
                await consumer.FetchAsync(handle, back);
                Assert.True(content.AsSpan().SequenceEqual(back.ToArray()), $"record {handle} came back different from the cloud");
            }

            server.KillNine();
        }

        var audit = await CliProcess.RunAsync(site.Path, "audit", "verify");
        Assert.True(audit.ExitCode == 0, audit.Error + audit.Output);
        Assert.Contains("intact", audit.Output);
    }

    protected static async Task UploadAsync(TrustedProxyClient producer, Dictionary<string, byte[]> records, int count, string patient)
    {
        for (var i = 0; i < count; i++)
        {
            var file = new DicomFileBuilder().Patient($"{patient}{i}", "Drill^Patient").PixelData(20_000 + (i * 90_000), seed: i + patient.Length).Build();
            var receipt = await producer.UploadAsync(new MemoryStream(file));
            records.Add(receipt.Handle, file);
        }
    }

    private static async Task<JsonElement> HealthAsync(TrustedProxyClient admin)
    {
        using var response = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("checks").Clone();
    }

    // Polls /healthz (administrators see the checks' figures) until the condition holds.
    private static async Task WaitForAsync(TrustedProxyClient admin, Func<JsonElement, bool> condition, string what)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(3);
        JsonElement last = default;
        while (DateTimeOffset.UtcNow < deadline)
        {
            last = await HealthAsync(admin);
            if (condition(last))
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }

        throw new TimeoutException($"waited 3 minutes for {what}; /healthz: {last}");
    }

    private static TrustedProxyClient Client(string root, int port, ProxyRole role) => TrustedProxyClient.FromFiles(
        new Uri($"https://127.0.0.1:{port}/"),
        Path.Combine(root, "certs", "clients", LocalFederation.ClientFileStem("Local Hospital", role) + ".p12"),
        string.Empty,
        new CertificateAuthorityPaths(Path.Combine(root, "certs")).CaCertificate);

    protected void WriteConfiguration(string root, int port, bool held, int intervalSeconds = 1)
    {
        var settings = new Dictionary<string, string?>
        {
            ["TrustedProxy:Server:Urls:0"] = $"https://127.0.0.1:{port}",
            ["TrustedProxy:Server:HostNames:0"] = "127.0.0.1",
            ["TrustedProxy:Server:HostNames:1"] = "localhost",
            ["TrustedProxy:Server:AutoInitializeCertificates"] = "true",
            ["TrustedProxy:Server:LocalOrganisation"] = "Local Hospital",
            ["TrustedProxy:UploadCache:Enabled"] = "true",
            ["TrustedProxy:UploadCache:BlockSizeBytes"] = "131072",
            ["TrustedProxy:UploadCache:SlotsPerSecond"] = "50",

            // Held: every slot a dummy, real blocks wait (for the drill's "waiting at the kill").
            ["TrustedProxy:UploadCache:PoolThreshold"] = held ? "1000000" : "1",
            ["TrustedProxy:UploadCache:MeanHoldSeconds"] = "1",
            ["TrustedProxy:UploadCache:MaxHoldSeconds"] = held ? "86400" : "5",
            ["TrustedProxy:UploadCache:AlarmAfterSeconds"] = "172800",
            ["TrustedProxy:UploadCache:RetryBaseSeconds"] = "0.2",
            ["TrustedProxy:UploadCache:RetryMaxSeconds"] = "1",
            ["TrustedProxy:Backup:Enabled"] = "true",
            ["TrustedProxy:Backup:IntervalSeconds"] = intervalSeconds.ToString(CultureInfo.InvariantCulture),
            ["TrustedProxy:Backup:IncrementCheckSeconds"] = "1",
            ["TrustedProxy:Backup:LagAlarmSeconds"] = "600",
            ["TrustedProxy:ObliviousRetrieval:Schedule"] = "immediate",
            ["TrustedProxy:ObliviousRetrieval:RelocationHoldSeconds"] = "1",
            ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in Backend)
        {
            settings[key] = value;
        }

        var configuration = new Dictionary<string, object?>();
        foreach (var (key, value) in settings)
        {
            var node = configuration;
            var parts = key.Split(':');
            foreach (var part in parts[..^1])
            {
                if (!node.TryGetValue(part, out var child))
                {
                    node[part] = child = new Dictionary<string, object?>();
                }

                node = (Dictionary<string, object?>)child!;
            }

            node[parts[^1]] = value;
        }

        Directory.CreateDirectory(Path.Combine(root, "config"));
        File.WriteAllText(Path.Combine(root, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));
    }
}

/// <summary>The drill on the filesystem backend (the cloud a directory beside the data directory), and the refusals.</summary>
public sealed class FileSystemDisasterDrillTests : DisasterDrill
{
    protected override IReadOnlyDictionary<string, string?> Backend { get; } = new Dictionary<string, string?>
    {
        ["TrustedProxy:Storage:Backend"] = "filesystem",
        ["TrustedProxy:Storage:filesystem:Root"] = "cloud",
    };

    [Fact]
    public async Task Recover_WithTwoShares_AnAlteredShare_NoBackup_OrANonEmptyTarget_IsRefusedInOneLine_AndWritesNothing()
    {
        using var site = new TemporaryDirectory();
        WriteConfiguration(site.Path, FreePort.Next(), held: false);
        var init = await CliProcess.RunAsync(site.Path, "init");
        Assert.True(init.ExitCode == 0, init.Error);
        var shares = Directory.GetFiles(Path.Combine(site.Path, "key-shares")).Order(StringComparer.Ordinal).ToArray();
        var altered = Path.Combine(site.Path, "altered.share");
        var text = await File.ReadAllTextAsync(shares[1]);
        var line = text.Split('\n').First(l => l.StartsWith("share", StringComparison.Ordinal));
        var value = line.TrimEnd()[^1];
        await File.WriteAllTextAsync(altered, text.Replace(line, line.TrimEnd()[..^1] + (value == '0' ? '1' : '0'), StringComparison.Ordinal));
        var occupied = Path.Combine(site.Path, "occupied");
        Directory.CreateDirectory(occupied);
        await File.WriteAllTextAsync(Path.Combine(occupied, "keep"), "x");

        async Task<string> RefusedAsync(params string[] arguments)
        {
            var (exitCode, output, error) = await CliProcess.RunAsync(site.Path, ["recover", .. arguments]);
            Assert.NotEqual(0, exitCode);
            Assert.Empty(output);
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.False(Directory.Exists(Path.Combine(site.Path, "new-data")));
            Assert.False(Directory.Exists(Path.Combine(site.Path, "new-certs")));
            Assert.Single(Directory.GetFiles(occupied));
            Assert.Empty(Directory.GetDirectories(site.Path, ".*recovering*"));
            return error;
        }

        var two = await RefusedAsync("--share", shares[0], "--share", shares[3], "--data", "new-data", "--certs", "new-certs");
        Assert.Contains("3", two);
        var corrupted = await RefusedAsync("--share", shares[0], "--share", altered, "--share", shares[3], "--data", "new-data", "--certs", "new-certs");
        Assert.Contains("altered.share", corrupted);
        var none = await RefusedAsync("--share", shares[0], "--share", shares[2], "--share", shares[3], "--data", "new-data", "--certs", "new-certs");
        Assert.Contains("no complete backup", none);
        var full = await RefusedAsync("--share", shares[0], "--share", shares[2], "--share", shares[3], "--data", "occupied", "--certs", "new-certs");
        Assert.Contains("not empty", full);
    }
}

/// <summary>The drill on the S3 backend: s3rver behind the verifying front, which checks every request as AWS does.</summary>
[Collection("s3rver")]
public sealed class S3DisasterDrillTests(S3rverFixture s3) : DisasterDrill
{
    protected override IReadOnlyDictionary<string, string?> Backend { get; } = new Dictionary<string, string?>(s3.Backend().Settings) { ["TrustedProxy:Storage:Backend"] = "s3" };
}
