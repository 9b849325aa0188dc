using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TrustedProxy.Backup;
using TrustedProxy.Crypto;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>What the backup did during a wire run: generations and increments staged, and where it stood at the end.</summary>
/// <param name="GenerationObjects">Objects of each generation staged, in order (its manifest included).</param>
/// <param name="IncrementObjects">Objects of each increment staged, in order, over every generation (its commit included).</param>
/// <param name="NewestComplete">The newest generation whose manifest the cloud accepted (null: none).</param>
/// <param name="LastIncrement">The newest increment committed on it (null: none).</param>
/// <param name="ObjectsWaiting">Backup objects still waiting for a dummy slot at the end.</param>
/// <param name="Checks">How often the run's loop called the shipper, as the server's BackupService would.</param>
/// <param name="IndexBytes">The index file's size at the end (every increment carries a whole copy of it).</param>
public sealed record WireBackupSummary(IReadOnlyList<long> GenerationObjects, IReadOnlyList<long> IncrementObjects, long? NewestComplete, long? LastIncrement, long ObjectsWaiting, int Checks, long IndexBytes)
{
    public override string ToString() => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"{GenerationObjects.Count} generations staged ({string.Join(", ", GenerationObjects)} objects), {IncrementObjects.Count} increments ({IncrementObjects.Sum()} objects, {(IncrementObjects.Count > 0 ? IncrementObjects.Min() : 0)}–{(IncrementObjects.Count > 0 ? IncrementObjects.Max() : 0)} each); newest complete generation {NewestComplete?.ToString() ?? "none"}, last increment on it {LastIncrement?.ToString() ?? "none"}; {ObjectsWaiting} objects waiting at the end; {Checks} checks; index {IndexBytes / 1024} KiB");
}

/// <summary>
/// The production backup in a wire run: a real <see cref="BackupShipper"/> over the run's own data
/// directory (the index as <c>proxy.db</c>, the staging area, an audit log), composed as
/// <see cref="BackupServiceCollectionExtensions.AddBackup"/> composes it (keys from a master key by
/// HKDF, the snapshot taker, the sealing writer, the HMAC names) and given to the engine as its
/// cover payload source. The server's BackupService calls the shipper on a timer; here the run's loop
/// calls <see cref="CheckAsync"/> at the same virtual times (every min(15 s, interval, increment
/// check)), so nothing sleeps. It talks to no backend itself: its objects leave only through the
/// engine's dummy slots.
/// </summary>
internal sealed class WireBackup : IDisposable
{
    private readonly ProxyKeyRing _keyRing;
    private readonly BackupKeys _keys;
    private readonly string _auditLog;
    private readonly TimeSpan _checkEvery;
    private readonly string _index;
    private readonly List<long> _generations = [];
    private readonly List<long> _increments = [];
    private int _checks;

    private WireBackup(ProxyKeyRing keyRing, BackupKeys keys, BackupShipper shipper, string auditLog, string index, TimeSpan checkEvery, DateTimeOffset start)
    {
        _index = index;
        _keyRing = keyRing;
        _keys = keys;
        Shipper = shipper;
        _auditLog = auditLog;
        _checkEvery = checkEvery;
        NextCheckAt = start;
    }

    /// <summary>The engine's cover payload source.</summary>
    public BackupShipper Shipper { get; }

    /// <summary>When the loop should call <see cref="CheckAsync"/> next.</summary>
    public DateTimeOffset NextCheckAt { get; private set; }

    /// <summary>
    /// Lays out what the snapshot taker reads beside the run's index and staging area (an audit log
    /// and a certificates directory with one file) and composes the shipper. The master key is fresh
    /// per run: the names and contents it yields are as unpredictable to the cloud as in production.
    /// </summary>
    public static WireBackup Start(string dataDirectory, BackupOptions options, int blockSize, TimeProvider time, IMeterFactory meters)
    {
        var audit = Path.Combine(dataDirectory, "audit");
        Directory.CreateDirectory(audit);
        var auditLog = Path.Combine(audit, "audit.log");
        File.WriteAllText(auditLog, "{\"event\":\"started\"}\n");
        var certs = dataDirectory + "-certs";
        Directory.CreateDirectory(Path.Combine(certs, "ca"));
        File.WriteAllText(Path.Combine(certs, "ca", "ca.crt.pem"), "a certificate's worth of bytes");

        var keyRing = ProxyKeyRing.FromBytes(RandomNumberGenerator.GetBytes(32));
        var keys = BackupKeys.From(keyRing);
        var shipper = new BackupShipper(
            Path.Combine(dataDirectory, "backup"),
            new BackupSnapshotTaker(dataDirectory, certs, TimeSpan.FromSeconds(5)),
            new BackupGenerationWriter(new BackupObjectSealer(keys, blockSize)),
            Options.Create(options),
            blockSize,
            time,
            meters,
            NullLogger<BackupShipper>.Instance)
        {
            NameOf = keys.NameOf,
        };

        // The server's BackupService period (src/TrustedProxy.Server/Backup/BackupService.cs).
        var checkEvery = TimeSpan.FromSeconds(Math.Min(Math.Min(15, options.IntervalSeconds), options.IncrementCheckSeconds));
        return new WireBackup(keyRing, keys, shipper, auditLog, Path.Combine(dataDirectory, "proxy.db"), checkEvery, time.GetUtcNow());
    }

    /// <summary>One pass of the BackupService: a generation if one is due, then an increment if the state moved on.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        _checks++;
        var waiting = Shipper.Status().ObjectsWaiting;
        if (await Shipper.StageIfDueAsync(cancellationToken) is not null)
        {
            _generations.Add(Shipper.Status().ObjectsWaiting - waiting);
            waiting = Shipper.Status().ObjectsWaiting;
        }

        if (await Shipper.StageIncrementIfDueAsync(cancellationToken) is not null)
        {
            _increments.Add(Shipper.Status().ObjectsWaiting - waiting);
        }

        NextCheckAt += _checkEvery;
    }

    /// <summary>An acknowledged upload is audited in the server; its entry grows the log an increment ships.</summary>
    public void Audit(string handle) => File.AppendAllText(_auditLog, $"{{\"event\":\"upload\",\"record\":\"{handle}\"}}\n");

    public WireBackupSummary Summary()
    {
        var status = Shipper.Status();
        return new WireBackupSummary(_generations.ToList(), _increments.ToList(), status.NewestComplete, status.LastIncrement, status.ObjectsWaiting, _checks, new FileInfo(_index).Length);
    }

    public void Dispose()
    {
        Shipper.Dispose();
        _keys.Dispose();
        _keyRing.Dispose();
    }
}
