using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Testing;

namespace TrustedProxy.LoadTests;

/// <summary>
/// Uploads per second of the proxy (<c>tproxy serve</c> as its own process, at its defaults: seal,
/// padding, audit and durability on, the upload cache on) against Orthanc's REST <c>/instances</c>,
/// with the same files and the same client loop, in one run. Phases alternate (proxy, Orthanc,
/// proxy, ...) so that noise from other work on the machine falls on both; the ratio is the figure.
/// </summary>
/// <remarks>
/// Both servers store an instance they already hold once (Orthanc answers AlreadyStored, the proxy
/// its existing record), which would measure the shortcut. Every upload therefore carries a fresh
/// SOP Instance UID of the original's length, written over every occurrence of the original's in
/// the file (file meta and data set), so that both servers receive the same bytes and store each
/// one. Files where that cannot be done (a deflated data set, a UID too short to vary) are left out,
/// as are files either server refuses; the run says how many.
/// </remarks>
internal static class IngestAgainstOrthanc
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var folder = Value("--folder");
        var connections = (Value("--connections") ?? "1").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
        var seconds = double.Parse(Value("--seconds") ?? "15", CultureInfo.InvariantCulture);
        var rounds = int.Parse(Value("--rounds") ?? "2", CultureInfo.InvariantCulture);
        var warmup = double.Parse(Value("--warmup") ?? "20", CultureInfo.InvariantCulture);
        var countFsyncs = args.Contains("--fsyncs");

        using var work = new TemporaryDirectory();
        if (folder is null)
        {
            folder = Directory.CreateDirectory(Path.Combine(work.Path, "ct")).FullName;
            GenerateCt(folder, int.Parse(Value("--ct") ?? "100", CultureInfo.InvariantCulture));
        }

        var candidates = await LoadAsync(folder);
        Progress($"{candidates.Count} files in {folder} can take a fresh SOP Instance UID");

        await using var orthanc = await OrthancProcess.StartStandaloneAsync();
        await using var proxy = await ProxyProcess.StartAsync(Directory.CreateDirectory(Path.Combine(work.Path, "proxy")).FullName);
        using var producer = proxy.Producer();
        var uids = new UidSource();
        Target proxyTarget = new("proxy", proxy.ProcessId, bytes => SendAsync(r => producer.SendAsync(r), "api/v1/records", bytes));
        Target orthancTarget = new("Orthanc", orthanc.ProcessId, bytes => SendAsync(r => orthanc.Http.SendAsync(r), "instances", bytes));

        // Only what both accept, so that both get the same files.
        var files = new List<Candidate>();
        var refused = new List<string>();
        foreach (var candidate in candidates)
        {
            var bytes = candidate.WithUid(uids.Next(candidate.Uid.Length));
            var byProxy = await proxyTarget.Upload(bytes);
            var byOrthanc = await orthancTarget.Upload(candidate.WithUid(uids.Next(candidate.Uid.Length)));
            if (byProxy is null && byOrthanc is null)
            {
                files.Add(candidate);
            }
            else
            {
                refused.Add($"{Path.GetFileName(candidate.Path)} ({byProxy ?? "proxy: stored"}; {byOrthanc ?? "Orthanc: stored"})");
            }
        }

        if (files.Count == 0)
        {
            Console.Error.WriteLine("no file is accepted by both servers");
            return 1;
        }

        var mean = files.Average(f => (double)f.Bytes.Length);
        Progress($"{files.Count} files accepted by both (mean {mean / 1024:F1} KiB); {refused.Count} left out");
        foreach (var reason in refused.Take(20))
        {
            Progress($"  left out: {reason}");
        }

        var results = new List<string>();
        foreach (var parallel in connections)
        {
            Progress($"{parallel} connection(s): warming up both for {warmup:F0} s each");
            await RunPhaseAsync(proxyTarget, files, uids, parallel, warmup);
            await RunPhaseAsync(orthancTarget, files, uids, parallel, warmup);
            var proxyPhases = new List<Phase>();
            var orthancPhases = new List<Phase>();
            for (var round = 0; round < rounds; round++)
            {
                proxyPhases.Add(await RunPhaseAsync(proxyTarget, files, uids, parallel, seconds));
                orthancPhases.Add(await RunPhaseAsync(orthancTarget, files, uids, parallel, seconds));
                Progress(string.Create(CultureInfo.InvariantCulture, $"  round {round + 1}: proxy {proxyPhases[^1].PerSecond:F0}/s, Orthanc {orthancPhases[^1].PerSecond:F0}/s"));
            }

            var p = Phase.Sum(proxyPhases);
            var o = Phase.Sum(orthancPhases);
            var fsyncs = countFsyncs
                ? $" {await CountFsyncsAsync(proxyTarget, files, uids, parallel, seconds):F1} / {await CountFsyncsAsync(orthancTarget, files, uids, parallel, seconds):F1} |"
                : string.Empty;
            results.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {parallel} | {p.PerSecond:F0} | {o.PerSecond:F0} | {p.PerSecond / o.PerSecond:F2}× | {p.CpuPerUpload:F2} ({p.SystemShare:P0} kernel) | {o.CpuPerUpload:F2} ({o.SystemShare:P0} kernel) |{fsyncs}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"# Ingest: tproxy serve (defaults) vs Orthanc REST /instances; {files.Count} files, mean {mean / 1024:F1} KiB; {rounds} × {seconds:F0} s a side after {warmup:F0} s warm-up; {Environment.ProcessorCount} cores"));
        Console.WriteLine();
        Console.WriteLine($"`dotnet run -c Release --project loadtests/TrustedProxy.LoadTests -- ingest {string.Join(' ', args.Skip(1))}`");
        Console.WriteLine();
        Console.WriteLine($"| connections | proxy uploads/s | Orthanc uploads/s | proxy/Orthanc | proxy CPU ms/upload | Orthanc CPU ms/upload |{(countFsyncs ? " fsyncs/upload proxy / Orthanc |" : string.Empty)}");
        Console.WriteLine($"|---|---|---|---|---|---|{(countFsyncs ? "---|" : string.Empty)}");
        foreach (var row in results)
        {
            Console.WriteLine(row);
        }

        return 0;
    }

    private sealed record Target(string Name, int ProcessId, Func<byte[], Task<string?>> Upload);

    private sealed record Phase(int Uploads, double Seconds, TimeSpan User, TimeSpan System)
    {
        public double PerSecond => Uploads / Seconds;

        public double CpuPerUpload => (User + System).TotalMilliseconds / Uploads;

        public double SystemShare => System / (User + System);

        public static Phase Sum(IReadOnlyList<Phase> phases) =>
            new(phases.Sum(p => p.Uploads), phases.Sum(p => p.Seconds), TimeSpan.FromTicks(phases.Sum(p => p.User.Ticks)), TimeSpan.FromTicks(phases.Sum(p => p.System.Ticks)));
    }

    // The same loop for both: each connection uploads the next file with a fresh UID until the time is up.
    private static async Task<Phase> RunPhaseAsync(Target target, IReadOnlyList<Candidate> files, UidSource uids, int parallel, double seconds)
    {
        using var server = Process.GetProcessById(target.ProcessId);
        var (user, system) = (server.UserProcessorTime, server.PrivilegedProcessorTime);
        var uploads = 0;
        var next = -1;
        var watch = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(_ => Task.Run(async () =>
        {
            while (watch.Elapsed < deadline)
            {
                var file = files[(int)((uint)Interlocked.Increment(ref next) % files.Count)];
                if (await target.Upload(file.WithUid(uids.Next(file.Uid.Length))) is { } failure)
                {
                    throw new InvalidOperationException($"{target.Name} refused {Path.GetFileName(file.Path)} during the run: {failure}");
                }

                Interlocked.Increment(ref uploads);
            }
        })));
        var elapsed = watch.Elapsed.TotalSeconds;
        server.Refresh();
        return new Phase(uploads, elapsed, server.UserProcessorTime - user, server.PrivilegedProcessorTime - system);
    }

    /// <summary>fsync and fdatasync calls per upload in the server (every thread), counted by strace over an untimed phase.</summary>
    private static async Task<double> CountFsyncsAsync(Target target, IReadOnlyList<Candidate> files, UidSource uids, int parallel, double seconds)
    {
        var summary = Path.GetTempFileName();
        var start = new ProcessStartInfo("strace") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", summary, "-p", target.ProcessId.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }

        using var strace = Process.Start(start) ?? throw new InvalidOperationException("strace is not installed");
        var attached = new TaskCompletionSource();
        strace.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null && e.Data.Contains("attached", StringComparison.Ordinal))
            {
                attached.TrySetResult();
            }
        };
        strace.BeginErrorReadLine();
        await attached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var phase = await RunPhaseAsync(target, files, uids, parallel, seconds);
        _ = Interrupt(strace.Id);
        await strace.WaitForExitAsync();
        var calls = File.ReadLines(summary)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 5 && f[^1] is "fsync" or "fdatasync")
            .Sum(f => long.Parse(f[3], CultureInfo.InvariantCulture));
        File.Delete(summary);
        return (double)calls / phase.Uploads;
    }

    private static int Interrupt(int pid)
    {
        using var kill = Process.Start("kill", ["-INT", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        return kill.ExitCode;
    }

    private static async Task<string?> SendAsync(Func<HttpRequestMessage, Task<HttpResponseMessage>> send, string path, byte[] bytes)
    {
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        using var response = await send(request);
        var body = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? null : $"{(int)response.StatusCode} {body[..Math.Min(body.Length, 200)]}";
    }

    private static async Task<List<Candidate>> LoadAsync(string folder)
    {
        var candidates = new List<Candidate>();
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var bytes = await File.ReadAllBytesAsync(path);
            string? uid;
            try
            {
                uid = (await DicomFile.ReadAsync(new MemoryStream(bytes, writable: false))).Dataset.GetString(DicomTag.SopInstanceUid)?.TrimEnd('\0', ' ');
            }
            catch (Exception e) when (e is DicomFormatException or InvalidDataException or EndOfStreamException)
            {
                continue;
            }

            if (uid is { Length: >= 16 } && Candidate.Occurrences(bytes, Encoding.ASCII.GetBytes(uid)) is { Count: >= 2 } at)
            {
                candidates.Add(new Candidate(path, bytes, uid, at));
            }
        }

        return candidates;
    }

    private static void GenerateCt(string folder, int count)
    {
        var study = "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
        for (var i = 1; i <= count; i++)
        {
            // 140 × 140 × 16 bit: about 39 KB a file, the issue's figure.
            new DicomFileBuilder($"{study}.1.{i}")
                .SopClass(DicomFileBuilder.CtImageStorageSopClass)
                .Patient("INGEST1", "Ingest^Load")
                .Study(study, study + ".1", "20240102", "CT")
                .Text(0x0020, 0x0013, "IS", i.ToString(CultureInfo.InvariantCulture))
                .Image(140, 140, seed: i)
                .WriteTo(Path.Combine(folder, $"{i:D4}.dcm"));
        }
    }

    private sealed record Candidate(string Path, byte[] Bytes, string Uid, IReadOnlyList<int> At)
    {
        public byte[] WithUid(string uid)
        {
            var copy = (byte[])Bytes.Clone();
            foreach (var offset in At)
            {
                Encoding.ASCII.GetBytes(uid, copy.AsSpan(offset, uid.Length));
            }

            return copy;
        }

        public static List<int> Occurrences(byte[] bytes, byte[] value)
        {
            var found = new List<int>();
            for (var start = 0; start < bytes.Length;)
            {
                var at = bytes.AsSpan(start).IndexOf(value);
                if (at < 0)
                {
                    break;
                }

                found.Add(start + at);
                start += at + value.Length;
            }

            return found;
        }
    }

    /// <summary>
    /// UIDs under 2.25 of a given length (at least 16 characters), unique in this run by a counter
    /// in the last digits and across runs by a random run number before it.
    /// </summary>
    private sealed class UidSource
    {
        private readonly string _run = System.Security.Cryptography.RandomNumberGenerator.GetInt32(100_000, 1_000_000).ToString(CultureInfo.InvariantCulture);
        private long _counter;

        public string Next(int length)
        {
            var digits = length - "2.25.".Length;
            var body = _run + Interlocked.Increment(ref _counter).ToString("D12", CultureInfo.InvariantCulture);
            body = body.Length >= digits ? body[^digits..] : body.PadLeft(digits, '1');
            return "2.25." + (body[0] == '0' ? "1" + body[1..] : body);
        }
    }

    private static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary><c>dotnet tproxy.dll serve</c> in a fresh directory with the product's defaults, but a loopback port and the shipped policy.</summary>
    private sealed class ProxyProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _root;
        private readonly int _port;

        private ProxyProcess(Process process, string root, int port) => (_process, _root, _port) = (process, root, port);

        public int ProcessId => _process.Id;

        public static async Task<ProxyProcess> StartAsync(string root)
        {
            var port = FreePort.Next();
            var configuration = new
            {
                TrustedProxy = new
                {
                    Server = new { Urls = new[] { $"https://127.0.0.1:{port}" }, HostNames = new[] { "127.0.0.1", "localhost" }, AutoInitializeCertificates = true, LocalOrganisation = "Local Hospital" },
                    Storage = new { Backend = "filesystem", filesystem = new { Root = "data/cloud" } },
                    Policy = new { Directory = Repository.Path("config", "policies") },
                },
            };
            Directory.CreateDirectory(Path.Combine(root, "config"));
            await File.WriteAllTextAsync(Path.Combine(root, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));

            var start = new ProcessStartInfo("dotnet") { WorkingDirectory = root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tproxy.dll"));
            start.ArgumentList.Add("serve");
            start.Environment["NO_COLOR"] = "1";
            var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            while (true)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException($"tproxy serve exited: {await errors}");
                if (line.Contains("listening on", StringComparison.Ordinal))
                {
                    // Keep draining both streams: a full pipe would stall the server's log writes.
                    _ = process.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
                    return new ProxyProcess(process, root, port);
                }
            }
        }

        public TrustedProxyClient Producer() => TrustedProxyClient.FromFiles(
            new Uri($"https://127.0.0.1:{_port}/"),
            Path.Combine(_root, "certs", "clients", LocalFederation.ClientFileStem("Local Hospital", ProxyRole.Producer) + ".p12"),
            string.Empty,
            new CertificateAuthorityPaths(Path.Combine(_root, "certs")).CaCertificate,
            Timeout.InfiniteTimeSpan);

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }
    }
}
