using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Tests.Audit;

/// <summary>Creating the CA, issuing and revoking are in the audit log before they take effect; without the log, they do not happen.</summary>
public sealed class CertificateAuthorityAuditTests : IDisposable
{
    private readonly AuditTestLog _log = new(checkpointEveryEntries: 1000);
    private readonly CertificateAuthorityPaths _paths;

    public CertificateAuthorityAuditTests() => _paths = new CertificateAuthorityPaths(Path.Combine(_log.Root, "certs"));

    [Fact]
    public async Task CreatingTheCa_IssuingAndRevoking_AreEachRecorded()
    {
        string serial;
        await using (var log = _log.Open())
        {
            var ca = ProxyCertificateAuthority.Create(_paths, "Test Root", passphrase: null, TimeProvider.System, log);
            using var credential = ca.IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(30));
            serial = credential.Serial;
            ca.Revoke(serial, RevocationReason.KeyCompromise);
            ca.Revoke(serial, RevocationReason.KeyCompromise);
        }

        var entries = _log.Lines().Select(AuditTestLog.Parse).ToList();
        Assert.Equal([AuditKinds.CaCreate, AuditKinds.CaIssue, AuditKinds.CaRevoke, AuditKinds.Checkpoint], entries.Select(e => e["kind"]!.GetValue<string>()));
        Assert.Equal(serial, entries[1]["data"]!["serial"]!.GetValue<string>());
        Assert.Equal("St Olav", entries[1]["data"]!["organisation"]!.GetValue<string>());
        Assert.Equal("consumer", entries[1]["data"]!["role"]!.GetValue<string>());
        Assert.Equal("key-compromise", entries[2]["data"]!["reason"]!.GetValue<string>());
        Assert.Equal("tester", entries[2]["actor"]!["user"]!.GetValue<string>());
        Assert.True(_log.Verify().Intact);
    }

    [Fact]
    public async Task WithoutTheAuditLog_NoCertificateIsIssuedOrRevoked()
    {
        await using var log = _log.Open();
        var ca = ProxyCertificateAuthority.Create(_paths, "Test Root", passphrase: null, TimeProvider.System, log);
        using var issued = ca.IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(30));
        Directory.Move(_log.Paths.Directory, _log.Paths.Directory + ".aside");
        File.WriteAllText(_log.Paths.Directory, "not a directory");

        Assert.Throws<AuditUnavailableException>(() => ca.IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(30)));
        Assert.Throws<AuditUnavailableException>(() => ca.Revoke(issued.Serial, RevocationReason.Superseded));

        var only = Assert.Single(ca.List());
        Assert.Equal(issued.Serial, only.Serial);
        Assert.Null(only.RevokedAt);
        File.Delete(_log.Paths.Directory);
        Directory.Move(_log.Paths.Directory + ".aside", _log.Paths.Directory);
    }

    public void Dispose() => _log.Dispose();
}
