using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Server.CertificateAuthority;

namespace TrustedProxy.Tests.CertificateAuthority;

/// <summary>
/// The CRL the proxy enforces must be the newest and in date: an older CRL put back (which would
/// re-admit what was revoked since) and a CRL past its next-update time beyond the grace both admit
/// nobody, and say why; the server signs a fresh one daily so that a quiet proxy never gets there.
/// </summary>
public sealed class CrlFreshnessTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(Start);
    private readonly CertificateAuthorityPaths _paths;
    private readonly ProxyCertificateAuthority _ca;

    public CrlFreshnessTests()
    {
        _paths = new CertificateAuthorityPaths(_directory.Path);
        _ca = ProxyCertificateAuthority.Create(_paths, "Test Root", passphrase: null, _time);
    }

    [Fact]
    public void AnOlderCrlPutBack_AdmitsNobody_WithOrWithoutTheRegistry_AndTheRevokedCertificateStaysOut()
    {
        var member = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var revoked = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var before = File.ReadAllBytes(_paths.Crl);
        _ca.Revoke(revoked.Serial, RevocationReason.KeyCompromise);
        var withRegistry = Crl(() => new IssuedCertificateRegistry(_paths.Registry).CurrentCrlNumber());
        var withoutRegistry = Crl(null);
        Assert.Equal(RevocationStatus.Revoked, withRegistry.Check(revoked.Serial));
        Assert.Equal(RevocationStatus.Good, withoutRegistry.Check(member.Serial));

        File.WriteAllBytes(_paths.Crl, before);
        File.SetLastWriteTimeUtc(_paths.Crl, DateTime.UtcNow.AddMinutes(1));

        foreach (var crl in new[] { withRegistry, withoutRegistry })
        {
            Assert.Equal(RevocationStatus.Unknown, crl.Check(revoked.Serial));
            Assert.Equal(RevocationStatus.Unknown, crl.Check(member.Serial));
            Assert.Contains("older than one already published", crl.Problem());
        }

        // A proxy starting on the old file still knows from the registry that a newer one was signed.
        Assert.Equal(RevocationStatus.Unknown, Crl(() => new IssuedCertificateRegistry(_paths.Registry).CurrentCrlNumber()).Check(revoked.Serial));

        // A fresh CRL puts things right.
        _ca.PublishCrl();
        Assert.Equal(RevocationStatus.Good, withRegistry.Check(member.Serial));
        Assert.Equal(RevocationStatus.Revoked, withRegistry.Check(revoked.Serial));
        Assert.Null(withRegistry.Problem());
    }

    [Fact]
    public void AnExpiredCrl_IsEnforcedForTheGrace_ThenAdmitsNobody_AndSaysWhy()
    {
        var member = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var crl = Crl(null, grace: TimeSpan.FromHours(24));

        _time.Advance(TimeSpan.FromDays(7) + TimeSpan.FromHours(23));
        Assert.Equal(RevocationStatus.Good, crl.Check(member.Serial));
        Assert.Null(crl.Problem());

        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(RevocationStatus.Unknown, crl.Check(member.Serial));
        Assert.Contains("the CRL expired at", crl.Problem());
        Assert.Contains("tproxy ca crl", crl.Problem());

        _ca.PublishCrl();
        Assert.Equal(RevocationStatus.Good, crl.Check(member.Serial));
    }

    [Fact]
    public async Task TheServer_SignsAFreshCrlDaily_SoAQuietProxyNeverReachesItsNextUpdate()
    {
        var member = _ca.IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var crl = Crl(() => new IssuedCertificateRegistry(_paths.Registry).CurrentCrlNumber(), grace: TimeSpan.Zero);
        using var service = new CrlRefreshService(new CertificateAuthorityAccess(_ca), _time, NullLogger<CrlRefreshService>.Instance);
        await service.StartAsync(CancellationToken.None);

        // Ten days an hour at a time, with no grace: the CRL signed at the start expires on day 7.
        var first = new IssuedCertificateRegistry(_paths.Registry).CurrentCrlNumber();
        for (var hour = 1; hour <= 240; hour++)
        {
            _time.Advance(TimeSpan.FromHours(1));
            await Task.Delay(2);
            Assert.True(crl.Check(member.Serial) == RevocationStatus.Good, $"hour {hour}: {crl.Problem()}");
        }

        await WaitUntilAsync(() => new IssuedCertificateRegistry(_paths.Registry).CurrentCrlNumber() >= first + 9);

        await service.StopAsync(CancellationToken.None);
    }

    private PublishedRevocationList Crl(Func<long>? signed, TimeSpan? grace = null) =>
        new(_paths.Crl, _ca.Certificate, _time, NullLogger<PublishedRevocationList>.Instance, grace, signed);

    // The service's continuation runs on the thread pool after the fake clock fires its timer.
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the refresh did not happen");
            await Task.Yield();
            await Task.Delay(10);
        }
    }

    public void Dispose() => _directory.Dispose();
}
