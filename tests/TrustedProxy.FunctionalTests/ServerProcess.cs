using System.Diagnostics;
using System.Globalization;

namespace TrustedProxy.FunctionalTests;

/// <summary><c>dotnet tproxy.dll serve</c> in a directory, killed with SIGKILL when done.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private Task<string>? _errors;

    private ServerProcess(Process process) => _process = process;

    public static async Task<ServerProcess> StartAsync(string root, int port)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tproxy.dll"));
        start.ArgumentList.Add("serve");
        start.Environment["NO_COLOR"] = "1";
        var process = Process.Start(start)!;
        var server = new ServerProcess(process);
        var errors = process.StandardError.ReadToEndAsync();
        server._errors = errors;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                throw new InvalidOperationException($"tproxy serve exited: {await errors}");
            }

            if (line.Contains("listening on", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return server;
            }
        }
    }

    /// <summary>
    /// The server's peak resident memory so far (VmHWM, the kernel's high-water mark of its resident
    /// set: every page it ever had in RAM at once, runtime, heaps and buffers alike).
    /// </summary>
    public long PeakResidentBytes
    {
        get
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
    }

    /// <summary>The CPU time the server has used so far, user and kernel, all threads.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>
    /// Starts a new high-water mark from the current resident set (Linux's <c>clear_refs</c> value
    /// 5), so that <see cref="PeakResidentBytes"/> then measures one phase of a test alone.
    /// </summary>
    public void ResetPeakResident() => File.WriteAllText($"/proc/{_process.Id}/clear_refs", "5");

    public void KillNine()
    {
        if (!_process.HasExited)
        {
            // Process.Kill sends SIGKILL on Unix: no shutdown handler runs.
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>Kills the server and returns what it wrote to stderr (its warnings and errors), read to the end.</summary>
    public async Task<string> KillNineAndReadErrorsAsync()
    {
        KillNine();
        return _errors is null ? string.Empty : await _errors;
    }

    public void Dispose()
    {
        KillNine();
        _process.Dispose();
    }
}
