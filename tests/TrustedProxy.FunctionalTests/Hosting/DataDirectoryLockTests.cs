using System.Text.Json;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// One proxy per data directory: a second is refused at once, before recovery could touch the
/// first one's files, and the lock goes with the process that held it, however it ended.
/// </summary>
public sealed class DataDirectoryLockTests
{
    [Fact]
    public async Task ASecondServerOnADataDirectoryInUse_IsRefused_BeforeRecoveryRuns()
    {
        await using var first = await ProxyHost.StartAsync();
        var stray = StrayCacheFile(first.Root);

        var error = await Assert.ThrowsAsync<DataDirectoryInUseException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = first.Root,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
                ["TrustedProxy:Storage:Backend"] = "filesystem",
                ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
            },
        }));

        Assert.Contains("in use", error.Message);
        Assert.True(File.Exists(stray), "recovery ran: it removed a cache file with no record");

        // Stopped, the first releases the directory; the next start takes it and recovers as usual.
        await first.StopAsync();
        await first.StartAgainAsync();
        Assert.False(File.Exists(stray), "recovery should remove a cache file with no record");
    }

    [Fact]
    public async Task TproxyServeOnADataDirectoryInUse_ExitsAtOnceWithOneLine_AndTheLockDiesWithAKilledServer()
    {
        using var directory = new TemporaryDirectory();
        var port = FreePort.Next();
        WriteConfiguration(directory.Path, port);
        var first = await ServerProcess.StartAsync(directory.Path, port);
        try
        {
            var stray = StrayCacheFile(directory.Path);

            var (exitCode, _, error) = await CliProcess.RunAsync(directory.Path, "serve");

            Assert.Equal(1, exitCode);
            var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("tproxy: the data directory", line);
            Assert.Contains("in use", line);
            Assert.True(File.Exists(stray), "recovery ran in the refused server");

            // SIGKILL: no handler runs, the kernel drops the lock with the process.
            first.KillNine();
            using var second = await ServerProcess.StartAsync(directory.Path, port);
            Assert.False(File.Exists(stray), "the new server's recovery should remove a cache file with no record");
        }
        finally
        {
            first.Dispose();
        }
    }

    /// <summary>A cache file no record knows, as a crash can leave: recovery removes it.</summary>
    private static string StrayCacheFile(string root)
    {
        var path = Path.Combine(root, "data", "staging", Guid.NewGuid().ToString("N") + ".tpx");
        File.WriteAllBytes(path, [1, 2, 3]);
        return path;
    }

    private static void WriteConfiguration(string root, int port)
    {
        var configuration = new
        {
            TrustedProxy = new
            {
                Server = new { Urls = new[] { $"https://127.0.0.1:{port}" }, HostNames = new[] { "127.0.0.1", "localhost" } },
                UploadCache = new { Enabled = false },
                ObliviousRetrieval = new { Schedule = "immediate" },
                Storage = new { Backend = "filesystem", filesystem = new { Root = "data/cloud" } },
                Policy = new { Directory = Repository.Path("config", "policies") },
            },
            Logging = new { LogLevel = new { Default = "Warning" } },
        };
        Directory.CreateDirectory(Path.Combine(root, "config"));
        File.WriteAllText(Path.Combine(root, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));
    }
}
