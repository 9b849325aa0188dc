using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// The CRL as the server enforces it. Whoever revokes (the CLI or the admin API) rewrites the
/// CRL file; every check looks at the file's timestamp and size and reloads a changed file, so a
/// revocation takes effect on the next handshake and the next request, without a restart.
/// A CRL that is missing or not signed by the CA fails closed: nobody is admitted. With an offline
/// root the issuing intermediate signs it (any intermediate of the root that the CRL itself does
/// not list as revoked: the server that still holds the previous one until it restarts, and the
/// CLI that rotated to the next one, number their CRLs from the same registry); in a two-level
/// installation, the root. So does a CRL
/// older than one already seen or than the newest the CA registry says it signed (its CRL number
/// lower: an old CRL put back would re-admit what was revoked since), and a CRL past its next-update
/// time by more than the grace (revocations since could be missing from it).
/// </summary>
internal sealed partial class PublishedRevocationList
{
    private readonly string _path;
    private readonly FederationTrust _trust;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _grace;
    private readonly Func<long>? _signedNumber;
    private long _highestNumber = -1;
    private DateTime _staleLogged;
    private static readonly (DateTime, long) Missing = (DateTime.MinValue, -1);
    private readonly Lock _gate = new();
    private (DateTime Written, long Length) _loadedVersion;
    private Snapshot? _current;

    /// <param name="path">The CRL file the CA writes.</param>
    /// <param name="caCertificate">The CA whose signature a CRL must carry.</param>
    /// <param name="time">The clock the next-update time is checked against.</param>
    /// <param name="logger">Where refusals are explained.</param>
    /// <param name="grace">How long past its next-update time a CRL is still enforced (then nobody is admitted).</param>
    /// <param name="signedNumber">The newest CRL number the CA signed (its registry), when this machine has it.</param>
    public PublishedRevocationList(string path, X509Certificate2 caCertificate, TimeProvider time, ILogger<PublishedRevocationList> logger, TimeSpan? grace = null, Func<long>? signedNumber = null)
        : this(path, FederationTrust.RootOnly(caCertificate), time, logger, grace, signedNumber)
    {
    }

    /// <param name="path">The CRL file the CA writes.</param>
    /// <param name="trust">The root and its intermediates, whose signature a CRL must carry.</param>
    /// <param name="time">The clock the next-update time is checked against.</param>
    /// <param name="logger">Where refusals are explained.</param>
    /// <param name="grace">How long past its next-update time a CRL is still enforced (then nobody is admitted).</param>
    /// <param name="signedNumber">The newest CRL number the CA signed (its registry), when this machine has it.</param>
    public PublishedRevocationList(string path, FederationTrust trust, TimeProvider time, ILogger<PublishedRevocationList> logger, TimeSpan? grace = null, Func<long>? signedNumber = null)
    {
        _path = path;
        _grace = grace ?? TimeSpan.FromDays(1);
        _signedNumber = signedNumber;
        _trust = trust;
        _time = time;
        _logger = logger;
    }

    /// <summary>The CRL's DER bytes as last loaded (for serving at the documented URL).</summary>
    public byte[]? CurrentDer => Refresh()?.Der;

    /// <summary>Whether the certificate is revoked, or its status cannot be known (no valid CRL): both refuse.</summary>
    public RevocationStatus Check(string serial)
    {
        var snapshot = Refresh();
        if (snapshot is null)
        {
            return RevocationStatus.Unknown;
        }

        if (snapshot.NextUpdate is { } next && next + _grace < _time.GetUtcNow().UtcDateTime)
        {
            if (_staleLogged != next)
            {
                _staleLogged = next;
                LogCrlExpired(_logger, next, _grace.TotalHours);
            }

            return RevocationStatus.Unknown;
        }

        return snapshot.Revoked.Contains(CertificateSerial.Normalize(serial)) ? RevocationStatus.Revoked : RevocationStatus.Good;
    }

    /// <summary>Why no certificate is admitted now (for the refusal's detail), or null when the CRL is in force.</summary>
    public string? Problem()
    {
        var snapshot = Refresh();
        return snapshot is null
            ? "no valid CRL is in force (missing, not signed by this CA, or older than one already published)"
            : snapshot.NextUpdate is { } next && next + _grace < _time.GetUtcNow().UtcDateTime
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"the CRL expired at {next:O} (grace {_grace.TotalHours:0.#} h): sign a fresh one (tproxy ca crl)")
                : null;
    }

    private Snapshot? Refresh()
    {
        FileInfo file = new(_path);
        if (!file.Exists)
        {
            lock (_gate)
            {
                if (_loadedVersion != Missing)
                {
                    LogCrlMissing(_logger, _path);
                    _current = null;
                    _loadedVersion = Missing;
                }
            }

            return null;
        }

        var version = (file.LastWriteTimeUtc, file.Length);
        if (version == _loadedVersion)
        {
            return _current;
        }

        lock (_gate)
        {
            if (version == _loadedVersion)
            {
                return _current;
            }

            _current = Load(file);
            _loadedVersion = version;
            return _current;
        }
    }

    private Snapshot? Load(FileInfo file)
    {
        try
        {
            var der = File.ReadAllBytes(file.FullName);
            var crl = new X509CrlParser().ReadCrl(der) ?? throw new InvalidDataException("no CRL in file");
            var revoked = crl.GetRevokedCertificates()?.Select(e => CertificateSerial.Normalize(e.SerialNumber.ToString(16))).ToHashSet() ?? [];
            VerifySigner(crl, revoked);
            var number = NumberOf(crl);
            var floor = Math.Max(_highestNumber, _signedNumber?.Invoke() ?? -1);
            if (number < floor)
            {
                LogCrlRolledBack(_logger, number, floor);
                return null;
            }

            _highestNumber = number;
            if (crl.NextUpdate is { } next && next < _time.GetUtcNow().UtcDateTime)
            {
                LogCrlStale(_logger, next);
            }

            LogCrlLoaded(_logger, revoked.Count);
            return new Snapshot(der, revoked, crl.NextUpdate);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or InvalidKeyException or SignatureException or Org.BouncyCastle.Security.Certificates.CrlException or ArgumentException or Microsoft.Data.Sqlite.SqliteException)
        {
            LogCrlInvalid(_logger, ex.Message);
            return null;
        }
    }

    // The root, or an intermediate of the root that is valid now and not withdrawn by this very CRL.
    private void VerifySigner(X509Crl crl, HashSet<string> revoked)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var signers = _trust.Intermediates
            .Where(i => i.NotBefore.ToUniversalTime() <= now && now <= i.NotAfter.ToUniversalTime() && !revoked.Contains(CertificateSerial.Of(i)))
            .Prepend(_trust.Root);
        foreach (var signer in signers)
        {
            try
            {
                crl.Verify(new X509CertificateParser().ReadCertificate(signer.RawData).GetPublicKey());
                return;
            }
            catch (Exception ex) when (ex is InvalidKeyException or SignatureException or Org.BouncyCastle.Security.Certificates.CrlException)
            {
                // Not this one; the next.
            }
        }

        throw new InvalidDataException("the CRL is not signed by this federation's root or a valid intermediate of it");
    }

    // RFC 5280 5.2.3; a CRL without one (not this CA's) counts as the oldest.
    private static long NumberOf(X509Crl crl) =>
        crl.GetExtensionValue(Org.BouncyCastle.Asn1.X509.X509Extensions.CrlNumber) is { } value
            ? Org.BouncyCastle.Asn1.X509.CrlNumber.GetInstance(Org.BouncyCastle.X509.Extension.X509ExtensionUtilities.FromExtensionValue(value)).PositiveValue.LongValue
            : -1;

    [LoggerMessage(EventId = 1105, Level = LogLevel.Error, Message = "The CRL's number {Number} is lower than {Floor}, already published: an older CRL was put back; every client certificate is refused until a fresh one is published")]
    private static partial void LogCrlRolledBack(ILogger logger, long number, long floor);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Error, Message = "The CRL expired at {NextUpdate:O}, more than the grace of {GraceHours} h ago: every client certificate is refused until a fresh one is published")]
    private static partial void LogCrlExpired(ILogger logger, DateTime nextUpdate, double graceHours);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "No CRL at {Path}: every client certificate is refused until the CA publishes one")]
    private static partial void LogCrlMissing(ILogger logger, string path);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "The CRL is unreadable or not signed by this CA ({Problem}): every client certificate is refused")]
    private static partial void LogCrlInvalid(ILogger logger, string problem);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "CRL loaded: {Count} revoked certificate(s)")]
    private static partial void LogCrlLoaded(ILogger logger, int count);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "The CRL's next update ({NextUpdate:O}) has passed; it is enforced for the grace period, then nobody is admitted. Publish a fresh one")]
    private static partial void LogCrlStale(ILogger logger, DateTime nextUpdate);

    private sealed record Snapshot(byte[] Der, HashSet<string> Revoked, DateTime? NextUpdate);
}

/// <summary>The revocation status of a certificate.</summary>
public enum RevocationStatus
{
    /// <summary>Not on the current CRL.</summary>
    Good,

    /// <summary>On the current CRL.</summary>
    Revoked,

    /// <summary>No valid CRL is available; treated as revoked.</summary>
    Unknown,
}
