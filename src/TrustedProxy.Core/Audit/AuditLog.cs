using System.Globalization;
using System.Security.Cryptography;
using System.Threading.Channels;
using TrustedProxy.Crypto;
using TrustedProxy.IO;

namespace TrustedProxy.Audit;

/// <summary>The audit log cannot be written (or must not be extended); whatever asked for the entry is refused.</summary>
public sealed class AuditUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The files of one audit log, all in one directory (&lt;data&gt;/audit).</summary>
public sealed record AuditLogPaths(string Directory)
{
    /// <summary>The entries, one JSON object per line.</summary>
    public string Log => Path.Combine(Directory, "audit.log");

    /// <summary>The latest signed checkpoint, rewritten (atomically) with each new one.</summary>
    public string Checkpoint => Path.Combine(Directory, "checkpoint.json");

    /// <summary>Taken (flock) by whichever process appends, so that the server and the command line never interleave.</summary>
    public string Lock => Path.Combine(Directory, "audit.lock");
}

/// <summary>
/// The tamper-evident audit log (docs/audit-log.md): an append-only file of hash-chained entries
/// with RFC 6962 Merkle-tree checkpoints signed by the proxy's audit key.
/// <para>
/// Appends are durable when they return: the entry is written and fsync'd. Concurrent appends
/// are committed together (group commit: whatever queued while the previous batch was being
/// fsync'd goes in the next batch, with one fsync), which is where the throughput comes from.
/// Each batch takes a cross-process lock, reopens the file by its path (so a log replaced,
/// removed or made unwritable fails the next append, not some later one), takes in entries that
/// another process (the command line) appended meanwhile after checking them, writes, and fsyncs.
/// A failed write is cut back to the last complete entry; if any step fails, every append of the
/// batch throws <see cref="AuditUnavailableException"/> and its caller refuses what it was about to do.
/// </para>
/// <para>
/// On opening, the whole log is verified (the proxy will not extend a log it would call broken)
/// and checked against its latest checkpoint file (a log shorter than it was truncated). A torn
/// last line (a crash inside an append, never acknowledged) is moved to a file beside the log and
/// the repair is itself appended as an entry.
/// </para>
/// </summary>
internal sealed class AuditLog : IAsyncDisposable, IDisposable
{
    private readonly ProxyKeyRing _ring;
    private readonly AuditLogOptions _options;
    private readonly TimeProvider _time;
    private readonly IAuditContextSource _contexts;
    private readonly AuditContext _owner;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _stateGate = new();
    private readonly List<string> _repairs = [];
    private Task _writer = Task.CompletedTask;
    private AuditChain _chain = null!;
    private long _length;
    private AuditKeyStore _keys = null!;

    private AuditLog(AuditLogPaths paths, ProxyKeyRing ring, AuditLogOptions options, TimeProvider time, IAuditContextSource contexts)
    {
        Paths = paths;
        _ring = ring;
        _options = options;
        _time = time;
        _contexts = contexts;
        _owner = contexts.Current;
    }

    public AuditLogPaths Paths { get; }

    /// <summary>The key new checkpoints are signed with.</summary>
    public AuditPublicKey PublicKey
    {
        get
        {
            lock (_stateGate)
            {
                return _keys.Current.PublicKey;
            }
        }
    }

    /// <summary>Every key the log's checkpoints were signed with, first to current (to export: old checkpoints verify with them).</summary>
    public IReadOnlyList<AuditPublicKey> Keys
    {
        get
        {
            lock (_stateGate)
            {
                return _keys.Keys;
            }
        }
    }

    /// <summary>What the log's own verification starts from: its first key.</summary>
    public AuditKeyTrust Trust
    {
        get
        {
            lock (_stateGate)
            {
                return _keys.Trust;
            }
        }
    }

    /// <summary>
    /// Raised, on the writer's thread, for every checkpoint that becomes durable in the log (signed
    /// here, or appended by another process and taken in). Handlers must not block: the witness queues it.
    /// </summary>
    public event Action<AuditCheckpoint>? Checkpointed;

    public AuditLogOptions Options => _options;

    /// <summary>Torn bytes found when the log was opened, by the name of the file they were set aside in.</summary>
    public IReadOnlyList<string> Repairs => _repairs;

    /// <summary>Entries durable in the log, as far as this process knows.</summary>
    public long Count
    {
        get
        {
            lock (_stateGate)
            {
                return _chain.Count;
            }
        }
    }

    /// <summary>The latest checkpoint in the log, as far as this process knows.</summary>
    public AuditCheckpoint? LatestCheckpoint
    {
        get
        {
            lock (_stateGate)
            {
                return _chain.LastCheckpoint;
            }
        }
    }

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>, verifying it first. Throws
    /// <see cref="AuditUnavailableException"/> if it does not verify or cannot be read or written.
    /// The context source says who appends, read at each append; what it says when the log opens
    /// is who writes checkpoints and repairs.
    /// </summary>
    public static AuditLog Open(string directory, ProxyKeyRing keys, AuditLogOptions options, TimeProvider time, IAuditContextSource contexts)
    {
        var log = new AuditLog(new AuditLogPaths(Path.GetFullPath(directory)), keys, options, time, contexts);
        try
        {
            SecretFile.EnsurePrivateDirectory(log.Paths.Directory);
            log.Load();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or CryptographicException)
        {
            throw new AuditUnavailableException($"the audit log in '{log.Paths.Directory}' cannot be opened: {ex.Message}", ex);
        }

        log._writer = Task.Run(log.RunAsync);
        return log;
    }

    /// <summary>
    /// Appends an entry; returns its sequence number once it is durable. The context (who, under
    /// which request) is by default what the context source says now.
    /// </summary>
    public async Task<long> AppendAsync(AuditEvent auditEvent, AuditContext? context = null) =>
        (await EnqueueAsync(new Pending(auditEvent, context ?? _contexts.Current)).ConfigureAwait(false)).Sequence;

    /// <summary>For the few synchronous callers (the certificate authority); blocks until durable.</summary>
    public long Append(AuditEvent auditEvent, AuditContext? context = null) => AppendAsync(auditEvent, context).GetAwaiter().GetResult();

    /// <summary>
    /// Records a change of the policy in force (for the policy engine to call when it loads a new version):
    /// the new version's hash, its files, the version it replaces.
    /// </summary>
    public Task<long> AppendPolicyChangeAsync(string versionHash, IReadOnlyList<string> files, string? previousVersionHash = null, AuditActor? actor = null) =>
        AppendAsync(AuditEvents.PolicyChange(versionHash, files, previousVersionHash), actor is null ? null : new AuditContext(actor, _contexts.Current.RequestId));

    /// <summary>Signs a checkpoint over everything appended so far (unless the last entry is one already) and returns it; null for an empty log.</summary>
    public async Task<AuditCheckpoint?> CheckpointAsync() =>
        (await EnqueueAsync(new Pending(null, _owner)).ConfigureAwait(false)).Checkpoint;

    /// <summary>
    /// Hands the log's checkpoints over to a freshly generated key (<c>tproxy audit rotate-key</c>):
    /// a checkpoint by the old key over everything so far, an <c>audit-key</c> entry signed by the
    /// old key and the new, and the new key's first checkpoint over that. The old private key then
    /// leaves the key store. Returns the new key's first checkpoint.
    /// </summary>
    public async Task<AuditCheckpoint> RotateKeyAsync(AuditContext? context = null) =>
        (await EnqueueAsync(new Pending(null, context ?? _contexts.Current, HandoverRotate)).ConfigureAwait(false)).Checkpoint!;

    /// <summary>Verifies the log as it stands (every complete entry, against the latest checkpoint file).</summary>
    public AuditVerification Verify() => VerifyDirectory(Paths, Trust, external: [], _options);

    /// <summary>
    /// Verifies a log directory, as the command line does offline: the committed length and the
    /// latest checkpoint file are read under the append lock (so an append in progress is not
    /// mistaken for a torn entry), then the log up to that length is verified without holding it.
    /// </summary>
    public static AuditVerification VerifyDirectory(AuditLogPaths paths, AuditKeyTrust trust, AuditAnchor? external, AuditLogOptions options) =>
        VerifyDirectory(paths, trust, external is null ? [] : [external], options);

    /// <summary>As above, with any number of checkpoints kept elsewhere (a witness's).</summary>
    public static AuditVerification VerifyDirectory(AuditLogPaths paths, AuditKeyTrust trust, IReadOnlyList<AuditAnchor> external, AuditLogOptions options)
    {
        var (length, local, unreadable) = Snapshot(paths, options);
        if (unreadable is not null)
        {
            return new AuditVerification(false, 0, 0, null, 0, [], new AuditProblem(AuditProblemKinds.Malformed, 0, null,
                $"the latest checkpoint file ({Path.GetFileName(paths.Checkpoint)}) is not a checkpoint: modified ({unreadable})"));
        }

        var anchors = new List<AuditAnchor>();
        if (local is not null)
        {
            anchors.Add(new AuditAnchor($"the latest checkpoint file ({Path.GetFileName(paths.Checkpoint)})", local, External: false));
        }

        anchors.AddRange(external);

        if (length == 0 && !File.Exists(paths.Log))
        {
            return local is null
                ? new AuditVerification(true, 0, 0, null, 0, [], null)
                : new AuditVerification(false, 0, 0, null, 0, [], new AuditProblem(AuditProblemKinds.Truncated, 1, 0, $"the log file is missing but its latest checkpoint covers {local.Size} entries: deleted"));
        }

        return AuditVerifier.Verify(paths.Log, trust, anchors, options.MaxEntryBytes, length);
    }

    /// <summary>
    /// The log's committed length and its latest checkpoint file (or why that file is unreadable),
    /// read together under the append lock.
    /// </summary>
    public static (long Length, AuditCheckpoint? Latest, string? LatestUnreadable) Snapshot(AuditLogPaths paths, AuditLogOptions options)
    {
        try
        {
            using var fileLock = ExclusiveFileLock.Acquire(paths.Lock, TimeSpan.FromSeconds(options.LockTimeoutSeconds));
            var length = File.Exists(paths.Log) ? new FileInfo(paths.Log).Length : 0;
            try
            {
                return (length, File.Exists(paths.Checkpoint) ? AuditCheckpointFile.Read(paths.Checkpoint) : null, null);
            }
            catch (FormatException ex)
            {
                return (length, null, ex.Message);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AuditUnavailableException($"the audit log in '{paths.Directory}' cannot be read: {ex.Message}", ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await CheckpointAsync().ConfigureAwait(false);
        }
        catch (AuditUnavailableException)
        {
            // Best effort: whoever needs a final checkpoint (shutdown, the command line) asks for it and sees the failure.
        }

        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        _keys?.Dispose();
    }

    /// <summary>For a container disposed synchronously.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    // One meter for every log in the process (the CLI opens logs without a container): what an alert
    // rule watches is that any entry failed, wherever.
    private static readonly System.Diagnostics.Metrics.Meter Meter = new("TrustedProxy.Audit");
    private static readonly System.Diagnostics.Metrics.Counter<long> Failures =
        Meter.CreateCounter<long>("trustedproxy.audit.failures", "{entry}", "Audit entries that could not be made durable; what each recorded was refused: alert on any");

    private async Task<Receipt> EnqueueAsync(Pending pending)
    {
        if (!_queue.Writer.TryWrite(pending))
        {
            Failures.Add(1);
            throw new AuditUnavailableException("the audit log is closed");
        }

        return await pending.Done.Task.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>();
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (batch.Count < _options.MaxBatchEntries && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
            }

            WriteBatch(batch);
            batch.Clear();
        }
    }

    private void WriteBatch(List<Pending> batch)
    {
        List<Receipt> receipts;
        try
        {
            using var fileLock = LockFile();
            using var stream = OpenLog(out var created);
            Resync(stream);
            receipts = Commit(stream, batch.Select(p => (p.Event, p.Context, p.Handover)).ToList(), created);
        }
        catch (Exception ex)
        {
            var failure = ex as AuditUnavailableException
                ?? new AuditUnavailableException($"the audit log '{Paths.Log}' cannot be written: {ex.Message}", ex);
            Failures.Add(batch.Count);
            foreach (var pending in batch)
            {
                pending.Done.TrySetException(failure);
            }

            return;
        }

        for (var i = 0; i < batch.Count; i++)
        {
            if (receipts[i].Failure is { } failure)
            {
                batch[i].Done.TrySetException(failure);
            }
            else
            {
                batch[i].Done.TrySetResult(receipts[i]);
            }
        }
    }

    private void Load()
    {
        using var fileLock = LockFile();
        var latest = File.Exists(Paths.Checkpoint) ? AuditCheckpointFile.Read(Paths.Checkpoint) : null;
        if (Directory.Exists(Paths.Log))
        {
            // Said as it is rather than as a deleted log (below): nothing was cut from the entries,
            // the path is in the way, and the operator should look there rather than suspect tampering.
            throw new IOException($"its path '{Paths.Log}' is a directory, not the log file");
        }

        var exists = File.Exists(Paths.Log);
        if (!exists && latest is not null)
        {
            throw Refuse($"the log file is missing but its latest checkpoint covers {latest.Size} entries: deleted");
        }

        // A log begun before the audit log had its own key was signed by the key derived from the
        // master key: the store starts from that key and the first act below hands over to a fresh one.
        _keys = AuditKeyStore.OpenOrCreate(Paths, _ring, legacyLog: exists && !File.Exists(AuditKeyStore.PathIn(Paths)) && HasEntries(Paths.Log), _time);
        _chain = new AuditChain(_keys.Trust);
        if (!exists)
        {
            return;
        }

        var anchors = latest is null ? [] : new[] { new AuditAnchor("the latest checkpoint file", latest, External: false) };
        var scan = AuditVerifier.Scan(Paths.Log, _keys.Trust, anchors, _options.MaxEntryBytes);
        if (scan.Problem is { } problem)
        {
            throw Refuse(problem.Message);
        }

        _chain = scan.Chain;
        _length = scan.CompleteLength;
        using var stream = OpenLog(out _);
        if (scan.TornBytes > 0)
        {
            Commit(stream, [(SetAsideTorn(stream, _length, scan.TornBytes), _owner, null)], created: false);
        }

        // A handover begun (the next key in the store) but not in the log: a crash in between, or
        // the first start after the upgrade. One in the log but not completed in the store: finish it.
        if (_keys.Next is { } next)
        {
            if (_chain.CurrentKey?.KeyId == next.PublicKey.KeyId)
            {
                _keys.CompleteHandover();
            }
            else
            {
                var receipt = Commit(stream, [(null, _owner, _keys.CurrentIsDerived ? HandoverMigrate : HandoverRotate)], created: false)[0];
                if (receipt.Failure is { } failure)
                {
                    throw failure;
                }
            }
        }

        // A crash between appending a checkpoint and rewriting the file leaves the file one behind.
        if (_chain.LastCheckpoint is { } last && (latest is null || latest.Size < last.Size))
        {
            WriteCheckpointFile(last);
        }
    }

    // Opened, not stat'ed: the length of what the path leads to (a symlink's own length is its target's name).
    private static bool HasEntries(string log)
    {
        using var stream = AuditVerifier.OpenShared(log);
        return stream.Length > 0;
    }

    private AuditUnavailableException Refuse(string problem) => new(
        $"the audit log '{Paths.Log}' does not verify, so the proxy will not extend it: {problem}. " +
        $"Investigate with 'tproxy audit verify'; to start a new log, move '{Paths.Directory}' aside and keep it as evidence");

    // Entries another process appended since this one last wrote are checked and taken in; a torn
    // remainder (that process died inside an append) is set aside like one found at start-up.
    private void Resync(FileStream stream)
    {
        var fileLength = stream.Length;
        if (fileLength == _length)
        {
            return;
        }

        if (fileLength < _length)
        {
            throw new AuditUnavailableException(string.Create(CultureInfo.InvariantCulture,
                $"the audit log is {fileLength} bytes, shorter than the {_length} bytes this proxy made durable: truncated or replaced behind its back; it will not append to it (run 'tproxy audit verify')"));
        }

        foreach (var line in AuditLogLines.Read(stream, _length, fileLength, _options.MaxEntryBytes).ToList())
        {
            if (!line.Complete)
            {
                Commit(stream, [(SetAsideTorn(stream, line.Offset, line.Length), _owner, null)], created: false);
                return;
            }

            AuditProblem? problem = null;
            AuditCheckpoint? taken = null;
            lock (_stateGate)
            {
                AuditEntry? entry = null;
                problem = line.TooLong
                    ? new AuditProblem(AuditProblemKinds.Malformed, line.Number, null, "a line longer than an entry may be")
                    : _chain.Accept(line.Bytes.Span, line.Number, out entry, out _);
                if (problem is null)
                {
                    _length = line.Offset + line.Length + 1;
                    if (entry!.Kind == AuditKinds.Checkpoint)
                    {
                        taken = _chain.LastCheckpoint;
                    }
                }
            }

            if (problem is not null)
            {
                throw new AuditUnavailableException($"what another process appended to the audit log does not verify ({problem.Message}); the proxy will not extend it (run 'tproxy audit verify')");
            }

            if (taken is not null)
            {
                Checkpointed?.Invoke(taken);
            }
        }
    }

    private AuditEvent SetAsideTorn(FileStream stream, long offset, long length)
    {
        if (length > _options.MaxEntryBytes * (long)_options.MaxBatchEntries)
        {
            throw Refuse(string.Create(CultureInfo.InvariantCulture, $"it ends in {length} bytes without a newline, more than any append writes"));
        }

        var torn = new byte[length];
        stream.Position = offset;
        stream.ReadExactly(torn);
        var name = string.Create(CultureInfo.InvariantCulture, $"torn-{offset}-{_time.GetUtcNow():yyyyMMddTHHmmssfffZ}.bin");
        WriteDurably(Path.Combine(Paths.Directory, name), torn);
        stream.SetLength(offset);
        stream.Flush(flushToDisk: true);
        _repairs.Add(name);
        return AuditEvents.Repair(offset, length, Convert.ToHexStringLower(SHA256.HashData(torn)), name);
    }

    /// <summary>
    /// Writes entries (and the checkpoints they call for) after the last durable entry, fsyncs,
    /// and only then takes them into the state. On failure the file is cut back to where it was.
    /// </summary>
    private List<Receipt> Commit(FileStream stream, IReadOnlyList<(AuditEvent? Event, AuditContext Context, string? Handover)> items, bool created)
    {
        AuditChain work;
        lock (_stateGate)
        {
            work = _chain.Clone();
        }

        var buffer = new MemoryStream();
        var receipts = new List<Receipt>(items.Count);
        var signed = new List<AuditCheckpoint>();
        var handedOver = false;
        var now = AuditHashes.Time(_time.GetUtcNow());
        foreach (var (auditEvent, context, handover) in items)
        {
            if (handover is not null)
            {
                Handover(work, buffer, now, context, handover, signed);
                handedOver = true;
                receipts.Add(new Receipt(work.Count - 1, work.LastCheckpoint));
                continue;
            }

            if (auditEvent is null)
            {
                if (work.Unanchored > 0 && work.Count > 0)
                {
                    signed.Add(AppendCheckpoint(work, buffer, now));
                }

                receipts.Add(new Receipt(work.Count - 1, work.LastCheckpoint));
                continue;
            }

            var line = AuditLine.Write(work.Count, now, auditEvent.Kind, context, auditEvent.Data, work.HeadHex, out var hash);
            if (line.Length - 1 > _options.MaxEntryBytes)
            {
                receipts.Add(new Receipt(-1, null, new AuditUnavailableException(string.Create(CultureInfo.InvariantCulture,
                    $"a '{auditEvent.Kind}' entry of {line.Length - 1} bytes is longer than TrustedProxy:Audit:MaxEntryBytes ({_options.MaxEntryBytes})"))));
                continue;
            }

            buffer.Write(line);
            work.Add(hash, checkpoint: null);
            receipts.Add(new Receipt(work.Count - 1, null));
            if (work.Unanchored >= _options.CheckpointEveryEntries)
            {
                signed.Add(AppendCheckpoint(work, buffer, now));
            }
        }

        if (buffer.Length > 0)
        {
            try
            {
                stream.Position = _length;
                stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                stream.Flush(flushToDisk: true);
                if (created)
                {
                    Durability.SyncDirectory(Paths.Directory);
                }
            }
            catch
            {
                CutBack(stream);
                throw;
            }

            lock (_stateGate)
            {
                _chain = work;
                _length += buffer.Length;
            }
        }

        if (handedOver)
        {
            // The entry is durable: the old private key may go. Should this fail, the next opening finishes it.
            lock (_stateGate)
            {
                _keys.CompleteHandover();
            }
        }

        if (signed.Count > 0)
        {
            WriteCheckpointFile(signed[^1]);
            foreach (var checkpoint in signed)
            {
                Checkpointed?.Invoke(checkpoint);
            }
        }

        return receipts;
    }

    private const string HandoverMigrate = "migrate";
    private const string HandoverRotate = "rotate";

    // Old key seals everything so far, the handover entry (signed by both keys) follows, and the new
    // key's first checkpoint covers the handover: no stretch of the log is under no key or two.
    private void Handover(AuditChain work, MemoryStream buffer, string time, AuditContext context, string reason, List<AuditCheckpoint> signed)
    {
        SigningKeyFor(work);
        if (work.Unanchored > 0 && work.Count > 0)
        {
            signed.Add(AppendCheckpoint(work, buffer, time));
        }

        // Read after BeginHandover, which reloads (and disposes) the store's key objects.
        AuditSigningKey previous, next;
        lock (_stateGate)
        {
            _keys.BeginHandover();
            (previous, next) = (_keys.Current, _keys.Next!);
        }

        var auditEvent = AuditEvents.AuditKeyHandover(previous, next, reason);
        buffer.Write(AuditLine.Write(work.Count, time, auditEvent.Kind, context, auditEvent.Data, work.HeadHex, out var hash));
        work.Use(previous.PublicKey);
        work.Use(next.PublicKey);
        work.Add(hash, checkpoint: null);
        signed.Add(AppendCheckpoint(work, buffer, time, next));
    }

    private AuditCheckpoint AppendCheckpoint(AuditChain work, MemoryStream buffer, string time, AuditSigningKey? key = null)
    {
        key ??= SigningKeyFor(work);
        var checkpoint = key.Sign(work.Count, AuditHashes.Hex(work.Tree.Root()), time);
        var auditEvent = AuditEvents.Checkpoint(checkpoint);
        buffer.Write(AuditLine.Write(work.Count, time, auditEvent.Kind, _owner, auditEvent.Data, work.HeadHex, out var hash));
        work.Use(key.PublicKey);
        work.Add(hash, checkpoint);
        return checkpoint;
    }

    // The store's current key, which must be the key the log is at: another process (tproxy audit
    // rotate-key) may have handed over since this one read the store.
    private AuditSigningKey SigningKeyFor(AuditChain work)
    {
        lock (_stateGate)
        {
            if (work.CurrentKey is { } at && at.KeyId != _keys.Current.PublicKey.KeyId)
            {
                _keys.Reload();
                if (at.KeyId != _keys.Current.PublicKey.KeyId)
                {
                    throw new AuditUnavailableException($"the audit log is at key {at.KeyId} but its key store ('{AuditKeyStore.FileName}') holds {_keys.Current.PublicKey.KeyId}: the store was replaced; the proxy will not sign (run 'tproxy audit verify')");
                }
            }

            return _keys.Current;
        }
    }

    // A write that failed part-way must not leave a partial entry behind; if even this fails (the
    // disk is gone), the next batch finds the remainder and sets it aside as a torn entry.
    private void CutBack(FileStream stream)
    {
        try
        {
            if (stream.Length > _length)
            {
                stream.SetLength(_length);
                stream.Flush(flushToDisk: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
        }
    }

    private void WriteCheckpointFile(AuditCheckpoint checkpoint)
    {
        var temporary = Path.Combine(Paths.Directory, $".checkpoint.{Guid.NewGuid():N}.tmp");
        try
        {
            WriteDurably(temporary, System.Text.Encoding.UTF8.GetBytes(AuditCheckpointFile.ToJson(checkpoint)));
            File.Move(temporary, Paths.Checkpoint, overwrite: true);
            Durability.SyncDirectory(Paths.Directory);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static void WriteDurably(string path, byte[] content)
    {
        using var file = new FileStream(path, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None));
        file.Write(content);
        file.Flush(flushToDisk: true);
    }

    private ExclusiveFileLock LockFile() => ExclusiveFileLock.Acquire(Paths.Lock, TimeSpan.FromSeconds(_options.LockTimeoutSeconds));

    private FileStream OpenLog(out bool created)
    {
        created = !File.Exists(Paths.Log);
        var options = SecretFile.OwnerOnlyOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileOptions.None, FileShare.ReadWrite | FileShare.Delete);
        options.BufferSize = 0;
        return new FileStream(Paths.Log, options);
    }

    private sealed record Receipt(long Sequence, AuditCheckpoint? Checkpoint, Exception? Failure = null);

    /// <summary>An append (or, with no event, a checkpoint request) waiting for its batch.</summary>
    private sealed record Pending(AuditEvent? Event, AuditContext Context, string? Handover = null)
    {
        public TaskCompletionSource<Receipt> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
