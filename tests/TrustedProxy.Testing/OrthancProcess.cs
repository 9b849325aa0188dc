using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Testing;

/// <summary>
/// A real Orthanc (Debian's orthanc with orthanc-dicomweb) as a DICOMweb client of a proxy: it
/// holds the proxy's producer, consumer and pacs credentials (one DICOMweb server each) and trusts the proxy's CA. Orthanc cannot
/// bind to loopback only; it is started with remote access refused, DICOM networking off, and
/// its HTTP API on a free port. Started standalone, it is the DICOMweb server the proxy is
/// compared with.
/// </summary>
public sealed class OrthancProcess : IAsyncDisposable
{
    public const string DicomWebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
    public const string Executable = "/usr/sbin/Orthanc";
    private readonly TemporaryDirectory _directory = new();
    private readonly StringBuilder _log = new();
    private Process? _process;

    private OrthancProcess() => Port = FreePort.Next();

    public int Port { get; }

    /// <summary>The Orthanc process's id, for sampling its memory from outside.</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("not started");

    public HttpClient Http { get; } = new();

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>
    /// An Orthanc with the local hospital's producer, consumer and pacs credentials as DICOMweb
    /// servers of those names, and one more server per entry of <paramref name="otherCredentials"/>
    /// (server name → file stem under <c>certs/clients</c>, as <c>tproxy ca issue</c> writes them
    /// without a password), for instance a consumer of another organisation.
    /// <paramref name="httpTimeout"/> is Orthanc's <c>HttpTimeout</c>: how long any one request of
    /// its HTTP client may last, whole transfer included (Orthanc's default 60 s when null).
    /// </summary>
    public static Task<OrthancProcess> StartAsync(Uri proxy, CertificateAuthorityPaths certificates, IReadOnlyDictionary<string, string>? otherCredentials = null, TimeSpan? httpTimeout = null)
    {
        object Server(string stem)
        {
            var path = Path.Combine(certificates.ClientsDirectory, stem);
            return new { Url = new Uri(proxy, "dicomweb/").ToString(), CertificateFile = path + ".crt.pem", CertificateKeyFile = path + ".key.pem", CertificateKeyPassword = "" };
        }

        var servers = new Dictionary<string, object>();
        foreach (var role in new[] { ProxyRole.Producer, ProxyRole.Consumer, ProxyRole.Pacs })
        {
            servers[ProxyRoles.ToName(role)] = Server(LocalFederation.ClientFileStem("Local Hospital", role));
        }

        foreach (var (name, stem) in otherCredentials ?? new Dictionary<string, string>())
        {
            servers.Add(name, Server(stem));
        }

        return StartAsync(servers, certificates.CaCertificate, httpTimeout);
    }

    /// <summary>An Orthanc on its own, serving its DICOMweb API with no proxy as a peer (a baseline to compare the proxy with).</summary>
    public static Task<OrthancProcess> StartStandaloneAsync() => StartAsync(new Dictionary<string, object>(), caCertificates: null);

    private static async Task<OrthancProcess> StartAsync(Dictionary<string, object> servers, string? caCertificates, TimeSpan? httpTimeout = null)
    {
        if (!File.Exists(Executable) || !File.Exists(DicomWebPlugin))
        {
            throw new InvalidOperationException("Orthanc is not installed: install Debian's orthanc and orthanc-dicomweb (the README's test command does this)");
        }

        var orthanc = new OrthancProcess();
        var config = new
        {
            Name = "tproxy-interop",
            StorageDirectory = orthanc._directory.File("db"),
            IndexDirectory = orthanc._directory.File("db"),
            HttpPort = orthanc.Port,
            DicomServerEnabled = false,
            RemoteAccessAllowed = false,
            AuthenticationEnabled = false,
            Plugins = new[] { DicomWebPlugin },
            HttpsCACertificates = caCertificates,
            HttpsVerifyPeers = true,
            HttpTimeout = httpTimeout is { } timeout ? (int?)Math.Ceiling(timeout.TotalSeconds) : null,
            DicomWeb = new { Enable = true, Root = "/dicom-web/", Servers = servers },
        };
        var path = orthanc._directory.File("orthanc.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(config, new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull }));

        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(path);
        orthanc._process = Process.Start(start)!;
        orthanc._process.OutputDataReceived += (_, e) => orthanc.Append(e.Data);
        orthanc._process.ErrorDataReceived += (_, e) => orthanc.Append(e.Data);
        orthanc._process.BeginOutputReadLine();
        orthanc._process.BeginErrorReadLine();
        orthanc.Http.BaseAddress = new Uri($"http://127.0.0.1:{orthanc.Port}/");
        await FreePort.WaitUntilListeningAsync(orthanc.Port, TimeSpan.FromSeconds(60), () => orthanc.Log);
        return orthanc;
    }

    /// <summary>Stores a file in Orthanc; returns Orthanc's study id.</summary>
    public async Task<string> AddAsync(byte[] file)
    {
        using var response = await Http.PostAsync("instances", new ByteArrayContent(file));
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["ParentStudy"]!.GetValue<string>();
    }

    public async Task<JsonNode> PostAsync(string path, object body)
    {
        // Orthanc's field names are PascalCase ("Resources"), not the web default camelCase.
        using var response = await Http.PostAsJsonAsync(path, body, new JsonSerializerOptions());
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Orthanc {path} answered {(int)response.StatusCode}: {text}\n{Log}");
        }

        return JsonNode.Parse(text)!;
    }

    public async Task<JsonNode> GetAsync(string path) => JsonNode.Parse(await Http.GetStringAsync(path))!;

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        Http.Dispose();
        _directory.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            if (_log.Length < 64 * 1024)
            {
                _log.AppendLine(line);
            }
        }
    }
}
