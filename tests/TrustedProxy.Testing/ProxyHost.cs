using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Hosting;
using TrustedProxy.Storage;

namespace TrustedProxy.Testing;

/// <summary>Which cloud a test proxy talks to.</summary>
public sealed record BackendSettings(string Name, IReadOnlyDictionary<string, string?> Settings)
{
    public static BackendSettings FileSystem { get; } = new("filesystem", new Dictionary<string, string?> { ["TrustedProxy:Storage:filesystem:Root"] = "data/cloud" });

    public static BackendSettings Azurite(EmulatorProcess azurite, string? container = null) => new("azure-blob", new Dictionary<string, string?>
    {
        ["TrustedProxy:Storage:azure-blob:ConnectionString"] = azurite.AzuriteConnectionString,
        ["TrustedProxy:Storage:azure-blob:Container"] = container ?? "c" + Guid.NewGuid().ToString("N")[..20],
        ["TrustedProxy:Storage:azure-blob:MaxRetries"] = "1",
        ["TrustedProxy:Storage:azure-blob:NetworkTimeoutSeconds"] = "10",
    });

    /// <summary>s3rver directly, with nothing checking the requests: prefer <see cref="Storage.VerifyingS3Front.Settings"/>.</summary>
    public static BackendSettings S3rver(EmulatorProcess s3rver, string? bucket = null) => S3(s3rver.S3ServiceUrl, bucket);

    /// <summary>An S3-compatible store at <paramref name="serviceUrl"/> (a verifying front or s3rver) with s3rver's credentials.</summary>
    public static BackendSettings S3(string serviceUrl, string? bucket = null) => new("s3", new Dictionary<string, string?>
    {
        ["TrustedProxy:Storage:s3:ServiceUrl"] = serviceUrl,
        ["TrustedProxy:Storage:s3:Bucket"] = bucket ?? "b" + Guid.NewGuid().ToString("N")[..20],
        ["TrustedProxy:Storage:s3:AccessKey"] = "S3RVER",
        ["TrustedProxy:Storage:s3:SecretKey"] = "S3RVER",
        ["TrustedProxy:Storage:s3:MaxRetries"] = "1",
    });

    public override string ToString() => Name;
}

/// <summary>
/// A real proxy in this process: Kestrel on a loopback port with real mutual TLS, real SQLite, a
/// real backend, certificates from its own CA in a temporary directory. Clients for each role are
/// made from the credentials the proxy created on first start.
/// </summary>
public sealed class ProxyHost : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _settings;
    private readonly TemporaryDirectory? _ownedDirectory;
    private readonly List<TrustedProxyClient> _clients = [];
    private WebApplication? _app;
    private ILoggerProvider? _logs;

    private ProxyHost(string root, Dictionary<string, string?> settings, TemporaryDirectory? owned)
    {
        Root = root;
        _settings = settings;
        _ownedDirectory = owned;
    }

    public string Root { get; }

    public Uri BaseAddress { get; private set; } = new("https://127.0.0.1/");

    public CertificateAuthorityPaths Certificates => new(Path.Combine(Root, "certs"));

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("not started");

    public IObjectStore Store => Services.GetRequiredService<IObjectStore>();

    public X509Certificate2 CaCertificate => X509Certificate2.CreateFromPem(File.ReadAllText(Certificates.CaCertificate));

    /// <summary>
    /// Starts a proxy. <paramref name="settings"/> win over the test defaults below; a null value
    /// removes the key instead, so that the product's own default applies (for example
    /// <c>["TrustedProxy:ObliviousRetrieval:Schedule"] = null</c> for the constant-rate read schedule
    /// rather than the tests' immediate reads).
    /// </summary>
    public static async Task<ProxyHost> StartAsync(BackendSettings? backend = null, IReadOnlyDictionary<string, string?>? settings = null, string? root = null, ILoggerProvider? logs = null)
    {
        backend ??= BackendSettings.FileSystem;
        var owned = root is null ? new TemporaryDirectory() : null;
        var all = new Dictionary<string, string?>
        {
            ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
            ["TrustedProxy:Storage:Backend"] = backend.Name,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:TrustedProxy.Tls"] = "Error",

            // Write-through unless a test turns the randomized cache on: most tests look at the
            // cloud right after an upload. The cache has its own tests.
            ["TrustedProxy:UploadCache:Enabled"] = "false",

            // No backup unless a test turns it on (null: the product's default, on with the cache):
            // tests of the cache count its slots and objects; the backup has its own tests.
            ["TrustedProxy:Backup:Enabled"] = "false",

            // Group reads at once rather than in constant-rate slots with cover reads in between,
            // which would keep every test server busy reading. The schedule has its own tests.
            ["TrustedProxy:ObliviousRetrieval:Schedule"] = "immediate",

            // The policy the proxy ships with (config/policies), read from the repository: the local
            // hospital's consumer receives unmarked originals, so that tests compare what it fetches
            // with what was uploaded byte for byte; consumers of other organisations get fingerprinted
            // copies, which the watermarking tests trace. Tests of other policies pass their own directory.
            ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
        };
        foreach (var (key, value) in backend.Settings)
        {
            all[key] = value;
        }

        Apply(all, settings);
        var host = new ProxyHost(root ?? owned!.Path, all, owned) { _logs = logs };
        await host.StartAgainAsync();
        return host;
    }

    /// <summary>
    /// Starts (again) on the same directory, as after a restart, optionally with changed settings
    /// (a null value removes the key: the product's default applies); the port may change.
    /// </summary>
    public async Task StartAgainAsync(IReadOnlyDictionary<string, string?>? changes = null)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("already running");
        }

        Apply(_settings, changes);
        _app = await ProxyServer.BuildAsync(new ProxyServerSettings { ContentRoot = Root, Overrides = _settings, LoggerProviders = _logs is null ? [] : [_logs] });
        await _app.StartAsync();
        BaseAddress = ProxyServer.ListeningAddresses(_app).First();
    }

    public async Task StopAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _clients.Clear();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>The local credential the proxy created for <paramref name="role"/>.</summary>
    public string CredentialPath(ProxyRole role) =>
        Path.Combine(Certificates.ClientsDirectory, LocalFederation.ClientFileStem("Local Hospital", role) + ".p12");

    public TrustedProxyClient Client(ProxyRole role) => Track(TrustedProxyClient.FromFiles(BaseAddress, CredentialPath(role), string.Empty, Certificates.CaCertificate));

    public TrustedProxyClient Client(X509Certificate2 certificate) => Track(new TrustedProxyClient(BaseAddress, certificate, CaCertificate));

    /// <summary>Opens the CA with the passphrase the proxy derived from its master key, to issue odd certificates.</summary>
    internal ProxyCertificateAuthority OpenCa()
    {
        using var keys = TrustedProxy.Crypto.ProxyKeyRing.LoadOrCreate(Path.Combine(Root, "data", "keys", "master.key"));
        return ProxyCertificateAuthority.Open(Certificates, TimeProvider.System, keys: keys);
    }

    /// <summary>Every object the backend holds, as the cloud sees it.</summary>
    public async Task<IReadOnlyList<StoredObject>> CloudObjectsAsync()
    {
        var objects = new List<StoredObject>();
        await foreach (var item in Store.ListAsync(CancellationToken.None))
        {
            objects.Add(item);
        }

        return objects;
    }

    public async Task<byte[]> ReadCloudObjectAsync(ObjectName name)
    {
        await using var stream = await Store.OpenReadAsync(name, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    /// <summary>Replaces an object's bytes in the cloud behind the proxy's back, as an attacker with cloud access would.</summary>
    public async Task OverwriteCloudObjectAsync(ObjectName name, byte[] content)
    {
        await Store.DeleteAsync(name, CancellationToken.None);
        using var stream = new MemoryStream(content);
        await Store.PutIfAbsentAsync(name, stream, content.Length, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _ownedDirectory?.Dispose();
    }

    // Removed rather than stored as null: a null in the in-memory source still shadows the key in
    // every source below it, and "the default" should mean exactly what a deployment without the key gets.
    private static void Apply(Dictionary<string, string?> target, IReadOnlyDictionary<string, string?>? changes)
    {
        foreach (var (key, value) in changes ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                target.Remove(key);
            }
            else
            {
                target[key] = value;
            }
        }
    }

    private TrustedProxyClient Track(TrustedProxyClient client)
    {
        _clients.Add(client);
        return client;
    }
}
