using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Audit;
using TrustedProxy.Backup;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Crypto;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Backup;

/// <summary>
/// <see cref="BackupRecovery"/> on real state (an index, a signed audit log, a CA with its key file):
/// it writes both directories only after every check, with the master key and a backup state that
/// continues the numbering, and refuses a generation whose CA key is not the certificate's, leaving
/// the targets as they were.
/// </summary>
public sealed class BackupRecoveryTests : IDisposable
{
    private const int BlockSize = 16 * 1024;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly ProxyKeyRing _keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup recovery tests"u8));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly FakeTimeProvider _time = new(Start);

    private string Data => Path.Combine(_directory.Path, "site", "data");

    private string Certs => Path.Combine(_directory.Path, "site", "certs");

    private FileSystemObjectStore Cloud => new(Path.Combine(_directory.Path, "cloud"));

    [Fact]
    public async Task Recover_WritesBothDirectoriesWithTheMasterKey_AfterCheckingAuditLogCaAndRecordCount()
    {
        await CreateStateAsync(records: 2);
        await ShipGenerationAsync();
        var recovery = new BackupRecovery(Cloud, _keyRing, BlockSize, _time);
        var found = await recovery.FindAsync(CancellationToken.None);
        Assert.NotNull(found);
        var data = Path.Combine(_directory.Path, "new", "data");
        var certs = Path.Combine(_directory.Path, "new", "certs");
        Directory.CreateDirectory(data); // empty: allowed

        var report = await recovery.RecoverAsync(found, data, certs, CancellationToken.None);

        Assert.Equal(0, report.Generation);
        Assert.Equal(2, report.Manifest.Records);
        Assert.True(report.Audit.Intact);
        Assert.True(report.Audit.Entries >= 3, report.Audit.Summary);
        Assert.True(report.CaChecked);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(Data, "keys", "master.key")), await File.ReadAllTextAsync(Path.Combine(data, "keys", "master.key")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(data, "keys", "master.key")));
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Certs, "ca", "ca.key.pem")), await File.ReadAllBytesAsync(Path.Combine(certs, "ca", "ca.key.pem")));
        Assert.Equal(2, await new RecordIndex(Path.Combine(data, "proxy.db")).CountAsync());
        var state = BackupState.Read(Path.Combine(data, "backup"))!;
        Assert.Equal(1, state.NextGeneration);
        Assert.Equal(0, state.LastComplete!.Generation);
        Assert.Empty(Directory.GetDirectories(Path.Combine(_directory.Path, "new"), ".*"));
        Assert.Null(BackupRecovery.RefuseTarget(Path.Combine(_directory.Path, "absent"), "--data"));
        Assert.Contains("not empty", BackupRecovery.RefuseTarget(data, "--data"));
    }

    [Fact]
    public async Task Recover_OfAGenerationWhoseCaKeyIsNotTheCertificates_IsRefused_AndTheTargetsStayAsTheyWere()
    {
        await CreateStateAsync(records: 1);
        var otherCa = new CertificateAuthorityPaths(Path.Combine(_directory.Path, "other-certs"));
        ProxyCertificateAuthority.Create(otherCa, "Another Root", passphrase: null, _time);
        File.Copy(otherCa.CaCertificate, new CertificateAuthorityPaths(Certs).CaCertificate, overwrite: true);
        await ShipGenerationAsync();
        var recovery = new BackupRecovery(Cloud, _keyRing, BlockSize, _time);
        var found = (await recovery.FindAsync(CancellationToken.None))!;
        var data = Path.Combine(_directory.Path, "new", "data");
        var certs = Path.Combine(_directory.Path, "new", "certs");

        var error = await Assert.ThrowsAsync<BackupIntegrityException>(() => recovery.RecoverAsync(found, data, certs, CancellationToken.None));

        Assert.Contains("not the CA certificate's key", error.Message);
        Assert.False(Directory.Exists(data));
        Assert.False(Directory.Exists(certs));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_directory.Path, "new")));
    }

    [Fact]
    public async Task Recover_OfACaWithAnOfflineRoot_ChecksTheIntermediatesKey_AndTheBackupHoldsNoRootKey()
    {
        var rootKey = Path.Combine(_directory.Path, "offline", "root.key.pem");
        await CreateStateAsync(records: 1, offlineRootKey: rootKey);
        await ShipGenerationAsync();
        var recovery = new BackupRecovery(Cloud, _keyRing, BlockSize, _time);
        var found = (await recovery.FindAsync(CancellationToken.None))!;
        var data = Path.Combine(_directory.Path, "new", "data");
        var certs = Path.Combine(_directory.Path, "new", "certs");

        var report = await recovery.RecoverAsync(found, data, certs, CancellationToken.None);

        Assert.True(report.CaChecked);
        var recovered = new CertificateAuthorityPaths(certs);
        Assert.True(recovered.HasIntermediate);
        Assert.False(File.Exists(recovered.CaPrivateKey));
        Assert.Single(Directory.GetFiles(recovered.IntermediatesDirectory));
        var key = (await File.ReadAllTextAsync(rootKey)).Trim();
        foreach (var file in Directory.GetFiles(Path.Combine(_directory.Path, "new"), "*", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain(key, await File.ReadAllTextAsync(file), StringComparison.Ordinal);
        }

        // The recovered CA issues with its intermediate, opened through the recovered master key.
        var ca = ProxyCertificateAuthority.Open(recovered, TimeProvider.System, keys: _keyRing);
        using var member = ca.IssueClient("Haukeland", TrustedProxy.Policy.ProxyRole.Consumer, TimeSpan.FromDays(30));
        Assert.Equal(ca.IssuingCertificate.Subject, member.Certificate.Issuer);
    }

    private async Task CreateStateAsync(int records, string? offlineRootKey = null)
    {
        SecretFile.EnsurePrivateDirectory(Data);
        SecretFile.EnsurePrivateDirectory(Path.Combine(Data, "keys"));
        ProxyKeyRing.WriteKeyFile(Path.Combine(Data, "keys", "master.key"), _keyRing.ExportMasterKey());
        var index = new RecordIndex(Path.Combine(Data, "proxy.db"));
        for (var i = 0; i < records; i++)
        {
            await index.InsertAsync(new RecordEntry
            {
                Handle = RecordHandle.New(),
                ObjectName = ObjectName.NewRandom(),
                WrappedKey = new byte[61],
                TransferSyntaxUid = "1.2.840.10008.1.2.1",
                PlaintextLength = 10,
                StoredLength = 10,
                ContentSha256 = new byte[32],
                OriginOrganisation = "Test",
                State = RecordState.Stored,
                CreatedAt = Start,
            });
        }

        await using (var audit = AuditLog.Open(Path.Combine(Data, "audit"), _keyRing, new AuditLogOptions(), _time, new FixedAuditContext(new AuditContext(AuditActor.Operator("tester")))))
        {
            if (offlineRootKey is null)
            {
                ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(Certs), "Test Root", passphrase: null, _time, audit);
            }
            else
            {
                ProxyCertificateAuthority.CreateWithOfflineRoot(new CertificateAuthorityPaths(Certs), "Test Root", offlineRootKey, "a root passphrase kept in a safe", CaPassphrase.Derive(_keyRing), _time, audit);
            }

            await audit.AppendAsync(AuditEvents.KeySplit("i", "s", 3, 5));
            await audit.AppendAsync(AuditEvents.KeySplit("i", "t", 3, 5));
        }
    }

    // The dummy slots, reduced to what matters here: each object put once, in order.
    private async Task ShipGenerationAsync()
    {
        using var keys = BackupKeys.From(_keyRing);
        using var shipper = new BackupShipper(
            Path.Combine(Data, "backup"),
            new BackupSnapshotTaker(Data, Certs, TimeSpan.FromSeconds(5)),
            new BackupGenerationWriter(new BackupObjectSealer(keys, BlockSize)),
            Microsoft.Extensions.Options.Options.Create(new BackupOptions { Enabled = true }),
            BlockSize,
            _time,
            _metrics.GetRequiredService<IMeterFactory>(),
            NullLogger<BackupShipper>.Instance)
        {
            NameOf = keys.NameOf,
        };
        Assert.Equal(0, await shipper.StageIfDueAsync(CancellationToken.None));
        var cloud = Cloud;
        while (shipper.Peek(BlockSize) is { } payload)
        {
            await using (var content = payload.Open())
            {
                await cloud.PutIfAbsentAsync(payload.Name, content, payload.Length, CancellationToken.None);
            }

            shipper.Shipped(payload);
        }

        Assert.Equal(0, shipper.Status().NewestComplete);
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _keyRing.Dispose();
        _directory.Dispose();
    }
}
