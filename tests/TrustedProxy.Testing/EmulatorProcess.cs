using System.Diagnostics;
using System.Text;

namespace TrustedProxy.Testing;

/// <summary>
/// A real cloud emulator (Azurite or s3rver from npm) running as a child process on a free
/// loopback port, with its own data directory. It can be stopped and started again on the same
/// port and data, to simulate an outage.
/// </summary>
public sealed class EmulatorProcess : IAsyncDisposable
{
    private readonly string _tool;
    private readonly Func<int, string, IEnumerable<string>> _arguments;
    private readonly StringBuilder _output = new();
    private readonly TemporaryDirectory _data = new();
    private Process? _process;

    private EmulatorProcess(string tool, Func<int, string, IEnumerable<string>> arguments)
    {
        _tool = tool;
        _arguments = arguments;
        Port = FreePort.Next();
    }

    public int Port { get; }

    /// <summary>Azurite's blob service, accepting the 12.x SDK's API version.</summary>
    public static Task<EmulatorProcess> StartAzuriteAsync() => StartAsync(new EmulatorProcess(
        Repository.NodeTool("azurite-blob"),
        (port, data) => ["--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--location", data, "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose"]));

    /// <summary>s3rver with the test bucket configured.</summary>
    public static Task<EmulatorProcess> StartS3rverAsync() => StartAsync(new EmulatorProcess(
        Repository.NodeTool("s3rver"),
        (port, data) => ["-d", data, "-a", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--silent"]));

    public string AzuriteConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:{Port}/devstoreaccount1;";

    public string S3ServiceUrl => $"http://127.0.0.1:{Port}";

    public bool IsRunning => _process is { HasExited: false };

    public async Task StartAsync()
    {
        var start = new ProcessStartInfo(_tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in _arguments(Port, _data.Path))
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException($"{_tool} did not start");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await FreePort.WaitUntilListeningAsync(Port, TimeSpan.FromSeconds(60), () => $"{Path.GetFileName(_tool)} said: {Output}");
    }

    /// <summary>Kills the emulator (an outage); its data stays for a later start.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _data.Dispose();
    }

    private static async Task<EmulatorProcess> StartAsync(EmulatorProcess emulator)
    {
        await emulator.StartAsync();
        return emulator;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }
}
