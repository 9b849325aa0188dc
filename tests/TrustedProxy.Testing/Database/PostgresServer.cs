using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace TrustedProxy.Testing.Database;

/// <summary>
/// A real, throwaway PostgreSQL cluster (Debian's postgresql 15), started once per test run on a
/// free loopback port in a temporary directory and removed when the test process ends. initdb
/// refuses to run as root, so as root the cluster runs as the unprivileged user <c>postgres</c>;
/// otherwise as the current user. Tests get their own database from <see cref="CreateDatabaseAsync"/>.
/// fsync is off: these tests are about behaviour, not durability.
/// </summary>
public sealed class PostgresServer
{
    private const string Superuser = "tp";
    private static readonly SemaphoreSlim StartLock = new(1, 1);
    private static PostgresServer? _shared;

    private readonly string _directory;

    private PostgresServer(string directory, int port)
    {
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The run's one cluster, started on first use.</summary>
    public static async Task<PostgresServer> SharedAsync()
    {
        await StartLock.WaitAsync();
        try
        {
            return _shared ??= await StartAsync();
        }
        finally
        {
            StartLock.Release();
        }
    }

    public string ConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = Superuser,
        Database = database,
        // Several test classes run at once; each connection costs a backend process.
        MaxPoolSize = 20,
    }.ToString();

    /// <summary>Creates a fresh, empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var binaries = FindBinaries();
        var directory = Path.Combine(Path.GetTempPath(), "tproxy-postgres-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            Run("chown", ["postgres", directory], asRoot: false);
        }

        var port = FreePort.Next();
        var server = new PostgresServer(directory, port);
        var data = Path.Combine(directory, "data");
        // A linguistic default collation (ICU en-US: "b" before "C"), as production clusters usually
        // have, so that a query relying on byte order without saying so fails here too.
        Run(Path.Combine(binaries, "initdb"), ["-D", data, "-A", "trust", "-U", Superuser, "-E", "UTF8", "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", "--no-sync", "--no-instructions"], asRoot);
        var options = string.Join(' ', [
            "-p", port.ToString(CultureInfo.InvariantCulture), "-k", directory, "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]);
        Run(Path.Combine(binaries, "pg_ctl"), ["-D", data, "-o", options, "-l", Path.Combine(directory, "log"), "-w", "-t", "60", "start"], asRoot);
        server.RemoveWhenTestProcessEnds();
        return server;
    }

    /// <summary>
    /// xunit 2 has no assembly fixture, and the test host may be killed once its results are in, so
    /// no handler in it can be trusted to run: a detached watcher (its own session) waits for the
    /// test process to end, then stops the cluster at once (SIGQUIT, an immediate shutdown) and
    /// removes its directory. It runs as whoever runs the tests, root included, who may signal the
    /// cluster either way.
    /// </summary>
    private void RemoveWhenTestProcessEnds()
    {
        var pidFile = Path.Combine(_directory, "data", "postmaster.pid");
        var script = $"while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 1; done; " +
            $"kill -QUIT \"$(head -n 1 '{pidFile}')\" 2>/dev/null; sleep 2; rm -rf '{_directory}'";
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])["-f", "sh", "-c", script])
        {
            start.ArgumentList.Add(argument);
        }

        using var watcher = Process.Start(start) ?? throw new InvalidOperationException("setsid did not start");
        watcher.WaitForExit();
    }

    private static string FindBinaries()
    {
        string[] candidates = ["/usr/lib/postgresql/15/bin", .. Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")) : [], "/usr/local/bin", "/usr/bin"];
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
            ?? throw new InvalidOperationException("PostgreSQL's initdb was not found; install Debian's postgresql (tools/test.sh does as root)");
    }

    /// <summary>Runs a PostgreSQL tool, as root through <c>su postgres</c> (the paths are our own, without quotes).</summary>
    private static void Run(string tool, IReadOnlyList<string> arguments, bool asRoot)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (asRoot)
        {
            start.FileName = "su";
            foreach (var argument in (string[])["postgres", "-s", "/bin/sh", "-c", string.Join(' ', new[] { tool }.Concat(arguments).Select(a => "'" + a + "'"))])
            {
                start.ArgumentList.Add(argument);
            }
        }
        else
        {
            start.FileName = tool;
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(tool)} failed ({process.ExitCode}): {output.Result} {error.Result}");
        }
    }
}
