using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Export;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.Benchmarks;

/// <summary>
/// What an export costs the proxy (docs/export.md, docs/benchmarks.md), single-threaded: per record
/// (a fresh content key wrapped to the recipient: P-256 key generation, ECDH, HKDF, AES-GCM; and the
/// record's framing), and per MB (the records' bytes sealed in 64 KiB segments), against .NET's raw
/// AES-256-GCM on the same segments; and the recipient's side, opening a bundle (signature, chain,
/// unwrap, decrypt, files written). tools/bench-export.sh runs this and OpenSSL's equivalents in one go.
/// </summary>
[MemoryDiagnoser]
public class ExportBenchmarks : IDisposable
{
    public const int Records = 100;
    public const int Bytes = 64 * 1024 * 1024;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tproxy-bench-export-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly byte[] _plaintext = RandomNumberGenerator.GetBytes(Bytes);
    private readonly byte[] _sealed = new byte[ExportFormat.MaxSegmentSize + 16];
    private readonly string[] _handles = [.. Enumerable.Range(0, Records).Select(_ => RecordHandle.New())];
    private readonly ExportOptions _options = new();
    private X509Certificate2 _ca = null!;
    private ExportSigner _signer = null!;
    private ExportRecipient _recipient = null!;
    private ECDiffieHellman _recipientKey = null!;
    private byte[] _bundleOfEmptyRecords = [];
    private AesGcm _raw = null!;
    private int _opened;

    [GlobalSetup]
    public void Setup()
    {
        var ca = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(_directory), "Benchmark Root", passphrase: null, TimeProvider.System);
        _ca = ca.Certificate;
        _signer = new ExportSigner(ca.IssueServer(["localhost"], TimeSpan.FromDays(1)).Certificate);
        var member = ca.IssueClient("Research Partner", ProxyRole.Consumer, TimeSpan.FromDays(1)).Certificate;
        _recipient = ExportRecipient.FromCertificate(X509CertificateLoader.LoadCertificate(member.RawData));
        using var ecdsa = member.GetECDsaPrivateKey()!;
        _recipientKey = ECDiffieHellman.Create();
        _recipientKey.ImportPkcs8PrivateKey(ecdsa.ExportPkcs8PrivateKey(), out _);
        _raw = new AesGcm(RandomNumberGenerator.GetBytes(32), 16);
        using var bundle = new MemoryStream();
        WriteEmptyRecords(bundle).GetAwaiter().GetResult();
        _bundleOfEmptyRecords = bundle.ToArray();
    }

    [Benchmark(Description = "wrap one record key (ephemeral P-256, ECDH, HKDF, AES-GCM)")]
    public byte[] WrapOneRecordKey() => _recipient.Wrap(new byte[32], new byte[16], 0, _handles[0], "original").Wrapped;

    [Benchmark(Description = "export 100 empty records (per-record cost x 100)")]
    public Task ExportEmptyRecords() => WriteEmptyRecords(Stream.Null);

    [Benchmark(Baseline = true, Description = "raw AES-256-GCM, 64 MiB in 64 KiB segments")]
    public void RawAesGcm()
    {
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> tag = stackalloc byte[16];
        const int segment = 64 * 1024;
        for (var offset = 0; offset < Bytes; offset += segment)
        {
            nonce[0]++;
            _raw.Encrypt(nonce, _plaintext.AsSpan(offset, segment), _sealed.AsSpan(0, segment), tag);
        }
    }

    [Benchmark(Description = "export one 64 MiB record (64 KiB segments)")]
    public async Task ExportOneLargeRecord()
    {
        using var writer = await ExportBundleWriter.StartAsync(Stream.Null, _recipient, _signer, 1, _options, DateTimeOffset.UtcNow, CancellationToken.None);
        await using var record = await writer.BeginRecordAsync(_handles[0], "original", CancellationToken.None);
        await record.WriteAsync(_plaintext);
        await record.CompleteAsync(CancellationToken.None);
        await writer.CompleteAsync(CancellationToken.None);
    }

    [Benchmark(Description = "open a bundle of 100 empty records (recipient side, files written)")]
    public async Task OpenEmptyRecords()
    {
        var output = Path.Combine(_directory, "out-" + _opened++);
        await new ExportBundleReader(_options, TimeProvider.System).OpenAsync(new MemoryStream(_bundleOfEmptyRecords), _recipientKey, _ca, output, CancellationToken.None);
        Directory.Delete(output, recursive: true);
    }

    private async Task WriteEmptyRecords(Stream output)
    {
        using var writer = await ExportBundleWriter.StartAsync(output, _recipient, _signer, Records, _options, DateTimeOffset.UtcNow, CancellationToken.None);
        foreach (var handle in _handles)
        {
            await using var record = await writer.BeginRecordAsync(handle, "original", CancellationToken.None);
            await record.CompleteAsync(CancellationToken.None);
        }

        await writer.CompleteAsync(CancellationToken.None);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _raw?.Dispose();
        _recipient?.Dispose();
        _recipientKey?.Dispose();
        _signer?.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
