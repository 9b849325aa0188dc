using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// The CRL as the server enforces it. Whoever revokes (the CLI or the admin API) rewrites the
/// CRL file; every check looks at the file's timestamp and size and reloads a changed file, so a
/// revocation takes effect on the next handshake and the next request, without a restart.
/// A CRL that is missing or not signed by the CA fails closed: nobody is admitted.
/// </summary>
internal sealed partial class PublishedRevocationList
{
    private readonly string _path;
    private readonly Org.BouncyCastle.Crypto.AsymmetricKeyParameter _caPublicKey;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private static readonly (DateTime, long) Missing = (DateTime.MinValue, -1);
    private readonly Lock _gate = new();
    private (DateTime Written, long Length) _loadedVersion;
    private Snapshot? _current;

    public PublishedRevocationList(string path, X509Certificate2 caCertificate, TimeProvider time, ILogger<PublishedRevocationList> logger)
    {
        _path = path;
        _caPublicKey = new X509CertificateParser().ReadCertificate(caCertificate.RawData).GetPublicKey();
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

        return snapshot.Revoked.Contains(CertificateSerial.Normalize(serial)) ? RevocationStatus.Revoked : RevocationStatus.Good;
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
            crl.Verify(_caPublicKey);
            var revoked = crl.GetRevokedCertificates()?.Select(e => CertificateSerial.Normalize(e.SerialNumber.ToString(16))).ToHashSet() ?? [];
            if (crl.NextUpdate is { } next && next < _time.GetUtcNow().UtcDateTime)
            {
                LogCrlStale(_logger, next);
            }

            LogCrlLoaded(_logger, revoked.Count);
            return new Snapshot(der, revoked);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or InvalidKeyException or SignatureException or Org.BouncyCastle.Security.Certificates.CrlException or ArgumentException)
        {
            LogCrlInvalid(_logger, ex.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "No CRL at {Path}: every client certificate is refused until the CA publishes one")]
    private static partial void LogCrlMissing(ILogger logger, string path);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Error, Message = "The CRL is unreadable or not signed by this CA ({Problem}): every client certificate is refused")]
    private static partial void LogCrlInvalid(ILogger logger, string problem);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "CRL loaded: {Count} revoked certificate(s)")]
    private static partial void LogCrlLoaded(ILogger logger, int count);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "The CRL's next update ({NextUpdate:O}) has passed; its revocations still apply. Publish a fresh one")]
    private static partial void LogCrlStale(ILogger logger, DateTime nextUpdate);

    private sealed record Snapshot(byte[] Der, HashSet<string> Revoked);
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
