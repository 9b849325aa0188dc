using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Backup;

/// <summary>How far behind the backup is (for <c>tproxy backup status</c>, /healthz and the metrics).</summary>
/// <param name="Enabled">Whether the backup runs.</param>
/// <param name="NewestComplete">The newest generation whose manifest is in the backend (null: none yet).</param>
/// <param name="BackupPoint">When that generation's snapshot was taken: state younger than this is not in the backup.</param>
/// <param name="LagSeconds">Time since the backup point (or, before the first generation completes, since the backup started).</param>
/// <param name="Shipping">The generation being shipped (null: none).</param>
/// <param name="ObjectsWaiting">Objects of that generation still waiting for a dummy slot.</param>
/// <param name="Alarm">The lag exceeds the configured threshold.</param>
/// <param name="LastIncrement">The newest increment committed on top of the newest complete generation (null: none); when set, the backup point is its time.</param>
public sealed record BackupStatus(bool Enabled, long? NewestComplete, DateTimeOffset? BackupPoint, double LagSeconds, long? Shipping, long ObjectsWaiting, bool Alarm, long? LastIncrement = null);

/// <summary>
/// Ships generations in the upload cache's dummy slots and keeps their progress. A generation is
/// staged (snapshot, sealed objects in <c>data/backup/</c>) when the previous one is complete and the
/// interval has passed; then each dummy slot of the block size carries its next object, the manifest
/// last. Progress survives a restart (state.json after every object, the staged file kept): the
/// generation goes on from its next object. When the load leaves no dummy slot, nothing ships and the
/// lag grows: the cloud never sees an extra write.
/// </summary>
internal sealed partial class BackupShipper : ICoverPayloadSource, IDisposable
{
    private readonly string _directory;
    private readonly BackupSnapshotTaker _snapshots;
    private readonly BackupGenerationWriter _writer;
    private readonly BackupOptions _options;
    private readonly int _blockSize;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _staging = new(1, 1);
    private readonly Meter _meter;
    private BackupState _state;
    private bool _generationsTurn;

    public BackupShipper(
        string directory, BackupSnapshotTaker snapshots, BackupGenerationWriter writer, IOptions<BackupOptions> options, int blockSize,
        TimeProvider time, IMeterFactory meters, ILogger<BackupShipper> logger)
    {
        _directory = directory;
        _snapshots = snapshots;
        _writer = writer;
        _options = options.Value;
        _blockSize = blockSize;
        _time = time;
        _logger = logger;
        _state = BackupState.Read(directory) ?? new BackupState(0, null, null, time.GetUtcNow());
        if (_state.Chain is { Staged: { } increment } chain && !File.Exists(IncrementFile(chain.Generation, increment.Increment)))
        {
            // None of it left: its number is taken again. Some left: its names cannot take other
            // contents, and a gap ends every replay, so a new generation instead.
            LogIncrementFileMissing(_logger, chain.Generation, increment.Increment);
            _state = _state with { Chain = Abandon(chain, increment) };
            _state.Write(directory);
        }

        if (_state.Staged is { } staged && !File.Exists(StagedFile(staged.Generation)))
        {
            // The staged file is gone (a disk restored without it): the generation starts over under
            // the next number if any of it left, so no name is ever used for two contents.
            LogStagedFileMissing(_logger, staged.Generation);
            _state = _state with { Staged = null, NextGeneration = staged.Shipped > 0 ? staged.Generation + 1 : staged.Generation };
            _state.Write(directory);
        }

        _meter = meters.Create("TrustedProxy.Backup");
        _meter.CreateObservableGauge("trustedproxy.backup.lag", () => Status().LagSeconds, "s", "Time since the newest complete backup generation's snapshot");
        _meter.CreateObservableGauge("trustedproxy.backup.objects_waiting", () => Status().ObjectsWaiting, "{object}", "Backup objects waiting for a dummy slot");
    }

    public bool Enabled => _options.Enabled;

    public BackupStatus Status()
    {
        BackupState state;
        lock (_gate)
        {
            state = _state;
        }

        var now = _time.GetUtcNow();
        var increment = state.LastIncrement;
        var point = state.BackupPoint;

        var lag = Math.Max(0, (now - (point ?? state.Since)).TotalSeconds);
        var waiting = (state.Staged is { } staged ? staged.Objects - staged.Shipped : 0) + (state.Chain?.Staged is { } i ? i.Objects - i.Shipped : 0);
        return new BackupStatus(_options.Enabled, state.LastComplete?.Generation, point, lag, state.Staged?.Generation, waiting, _options.Enabled && lag > _options.LagAlarmSeconds, increment?.Increment);
    }

    /// <summary>Whether a new generation is due: none being shipped, and the interval passed since the last snapshot.</summary>
    public bool Due()
    {
        lock (_gate)
        {
            if (!_options.Enabled || _state.Staged is not null)
            {
                return false;
            }

            return _state.Chain is { Broken: true } || _state.LastComplete is not { } last || _time.GetUtcNow() - last.CreatedAt >= TimeSpan.FromSeconds(_options.IntervalSeconds);
        }
    }

    /// <summary>Stages the next generation if one is due; returns its number, or null.</summary>
    public async Task<long?> StageIfDueAsync(CancellationToken cancellationToken)
    {
        await _staging.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!Due())
            {
                return null;
            }

            long generation;
            lock (_gate)
            {
                generation = _state.NextGeneration;
            }

            Crypto.SecretFile.EnsurePrivateDirectory(_directory);
            var work = Path.Combine(_directory, "work");
            var createdAt = _time.GetUtcNow();
            try
            {
                var snapshot = await _snapshots.TakeAsync(work, cancellationToken).ConfigureAwait(false);
                var (objects, manifest) = await _writer.WriteAsync(snapshot, generation, createdAt, work, StagedFile(generation), cancellationToken).ConfigureAwait(false);

                // The index as this generation holds it: its first increment's pages are taken against it.
                KeepReference(snapshot, ReferenceFile(generation, null));
                lock (_gate)
                {
                    var baseFiles = snapshot.Files.Select(f => f.Path).Where(p => p.StartsWith(StagingPrefix, StringComparison.Ordinal)).ToList();
                    _state = _state with { Staged = new StagedGeneration(generation, objects, 0, createdAt, baseFiles, snapshot.Counts.AuditBytes), NextGeneration = generation + 1 };
                    _state.Write(_directory);
                    PruneReferences();
                }

                LogStaged(_logger, generation, objects, manifest.Records, manifest.WaitingBlocks);
                return generation;
            }
            finally
            {
                if (Directory.Exists(work))
                {
                    Directory.Delete(work, recursive: true);
                }
            }
        }
        finally
        {
            _staging.Release();
        }
    }

    /// <summary>
    /// Stages the next increment of the newest complete generation when the state changed since what
    /// the backend holds for it (a new waiting upload or queued relocation, the audit log grown: every
    /// upload, deletion, certificate change is audited) and no increment is being shipped; returns its
    /// number, or null. It carries the index's pages that changed since the chain's end (the whole
    /// index when that copy is missing, as after an upgrade), the staging and relocation files the
    /// generation does not hold yet, the audit log's new bytes, and the rest of the small state
    /// (checkpoint, read-cover model, certificates) whole.
    /// </summary>
    public async Task<long?> StageIncrementIfDueAsync(CancellationToken cancellationToken)
    {
        await _staging.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            IncrementChain chain;
            lock (_gate)
            {
                if (!_options.Enabled || _state.Chain is not { Staged: null, Broken: false } c || c.NextIncrement >= BackupKeys.MaxIncrements)
                {
                    return null;
                }

                chain = c;
            }

            var shipped = chain.Shipped.ToHashSet(StringComparer.Ordinal);
            if (!_snapshots.ChangedSince(shipped, chain.AuditBytes))
            {
                return null;
            }

            Crypto.SecretFile.EnsurePrivateDirectory(_directory);
            var work = Path.Combine(_directory, "work");
            var createdAt = _time.GetUtcNow();
            var (generation, increment) = (chain.Generation, chain.NextIncrement);
            try
            {
                var snapshot = await _snapshots.TakeAsync(work, cancellationToken, shipped).ConfigureAwait(false);
                var files = new List<(string Path, string Source)>();
                var added = new List<string>();
                var handles = new List<string>();
                foreach (var (path, source) in snapshot.Files)
                {
                    if (path.StartsWith(StagingPrefix, StringComparison.Ordinal))
                    {
                        if (shipped.Contains(path))
                        {
                            continue;
                        }

                        added.Add(path);
                        if (!path.StartsWith(StagingPrefix + "relocations/", StringComparison.Ordinal))
                        {
                            handles.Add(Path.GetFileNameWithoutExtension(path));
                        }
                    }
                    else if (path == AuditLogEntry)
                    {
                        files.Add((path, AuditTail(source, chain.AuditBytes, Path.Combine(work, "audit.tail"))));
                        continue;
                    }
                    else if (path == IndexEntry && File.Exists(ReferenceOf(chain)))
                    {
                        // Only the pages that changed since the copy the backend's chain ends on.
                        var patch = Path.Combine(work, "proxy.db.pages");
                        IndexPagePatch.Create(ReferenceOf(chain), source, patch);
                        files.Add((IndexPagePatch.EntryPath, patch));
                        continue;
                    }

                    files.Add((path, source));
                }

                var counts = snapshot.Counts;
                var (objects, _) = await _writer.WriteIncrementAsync(
                    files, generation, increment,
                    (dataObjects, streamBytes, hash, entries) => new BackupIncrementCommit(1, generation, increment, createdAt, dataObjects, streamBytes, hash, entries, chain.AuditBytes, counts.Records, counts.WaitingBlocks),
                    work, IncrementFile(generation, increment), cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_state.Chain is not { Staged: null } current || current.Generation != generation || current.NextIncrement != increment)
                    {
                        // A newer generation completed meanwhile: its own increments start from its snapshot.
                        File.Delete(IncrementFile(generation, increment));
                        return null;
                    }

                    // Before the state names the increment: a crash in between stages it again.
                    KeepReference(snapshot, ReferenceFile(generation, increment));
                    _state = _state with { Chain = current with { Staged = new StagedIncrement(increment, objects, 0, createdAt, added, counts.AuditBytes), NextIncrement = increment + 1 } };
                    _state.Write(_directory);
                    PruneReferences();
                }

                LogIncrementStaged(_logger, generation, increment, objects, handles.Count);
                return increment;
            }
            finally
            {
                if (Directory.Exists(work))
                {
                    Directory.Delete(work, recursive: true);
                }
            }
        }
        finally
        {
            _staging.Release();
        }
    }

    // The index copy the backend's chain ends on: the newest committed increment's, else the generation's.
    private string ReferenceOf(IncrementChain chain) => ReferenceFile(chain.Generation, chain.Last?.Increment);

    private string ReferenceFile(long generation, long? increment) =>
        Path.Combine(_directory, increment is { } i ? $"index-{generation}-{i}.db" : $"index-{generation}.db");

    private static void KeepReference(Snapshot snapshot, string reference)
    {
        var index = snapshot.Files.First(f => f.Path == IndexEntry).Source;
        var temporary = reference + ".tmp";
        File.Copy(index, temporary, overwrite: true);
        File.Move(temporary, reference, overwrite: true);
    }

    // Under _gate. Keeps the copies an increment may still be taken against: the chain's end, the one
    // being shipped (it becomes the end once committed), and the generation being shipped (its
    // increments start from it once complete).
    private void PruneReferences()
    {
        var keep = new HashSet<string>(StringComparer.Ordinal);
        if (_state.Chain is { } chain)
        {
            keep.Add(ReferenceOf(chain));
            if (chain.Staged is { } staged)
            {
                keep.Add(ReferenceFile(chain.Generation, staged.Increment));
            }
        }

        if (_state.Staged is { } generation)
        {
            keep.Add(ReferenceFile(generation.Generation, null));
        }

        foreach (var file in Directory.EnumerateFiles(_directory, "index-*.db"))
        {
            if (!keep.Contains(file))
            {
                File.Delete(file);
            }
        }
    }

    private static IncrementChain Abandon(IncrementChain chain, StagedIncrement increment) =>
        increment.Shipped > 0 ? chain with { Staged = null, Broken = true } : chain with { Staged = null, NextIncrement = increment.Increment };

    // The audit log's bytes from where the backend's copy ends (the log is append-only).
    private static string AuditTail(string copy, long from, string tail)
    {
        using var input = File.OpenRead(copy);
        if (input.Length < from)
        {
            throw new IOException($"the audit log is shorter ({input.Length} bytes) than the backup's copy ({from} bytes): it is append-only");
        }

        input.Position = from;
        using var output = new FileStream(tail, Crypto.SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None));
        input.CopyTo(output);
        return tail;
    }

    public CoverPayload? Peek(long length)
    {
        if (length != _blockSize)
        {
            return null;
        }

        lock (_gate)
        {
            // Increments carry the recovery point, a generation bounds the chain's length: when both
            // wait, they take the dummy slots in turn, so neither starves the other.
            var generationWaits = _state.Staged is { } g && g.Shipped < g.Objects;
            _generationsTurn = generationWaits && !_generationsTurn;
            if (_state.Chain is { Staged: { } increment } chain && increment.Shipped < increment.Objects && !_generationsTurn)
            {
                var file = IncrementFile(chain.Generation, increment.Increment);
                if (File.Exists(file))
                {
                    var index = increment.Shipped;
                    var sequence = BackupKeys.IncrementSequence(increment.Increment, index == increment.Objects - 1 ? BackupKeys.CommitIndex : index);
                    return new CoverPayload(NameOf(chain.Generation, sequence), _blockSize, () => OpenObject(file, index), new IncrementToken(chain.Generation, increment.Increment, index));
                }

                LogIncrementFileMissing(_logger, chain.Generation, increment.Increment);
                _state = _state with { Chain = Abandon(chain, increment) };
                _state.Write(_directory);
            }

            return PeekGeneration();
        }
    }

    // Under _gate.
    private CoverPayload? PeekGeneration()
    {
        if (_state.Staged is not { } staged || staged.Shipped >= staged.Objects)
        {
            return null;
        }

        var generation = staged.Generation;
        var index = staged.Shipped;
        if (!File.Exists(StagedFile(generation)))
        {
            // Never a payload that cannot be read: that would cost every dummy slot from now on.
            LogStagedFileMissing(_logger, generation);
            _state = _state with { Staged = null, NextGeneration = index > 0 ? generation + 1 : generation };
            _state.Write(_directory);
            return null;
        }

        var sequence = index == staged.Objects - 1 ? BackupKeys.ManifestSequence : (ulong)index;
        var file = StagedFile(generation);
        return new CoverPayload(NameOf(generation, sequence), _blockSize, () => OpenObject(file, index), new GenerationToken(generation, index));
    }

    public void Shipped(CoverPayload payload)
    {
        if (payload.Token is IncrementToken token)
        {
            IncrementShipped(token);
            return;
        }

        var (generation, index) = (GenerationToken)payload.Token;
        lock (_gate)
        {
            if (_state.Staged is not { } staged || staged.Generation != generation || staged.Shipped != index)
            {
                return;
            }

            var generations = RecordShipped(_state.Generations, generation, staged.Objects, index + 1);
            if (index + 1 < staged.Objects)
            {
                _state = _state with { Staged = staged with { Shipped = index + 1 }, Generations = generations };
                _state.Write(_directory);
                return;
            }

            // The increments of the previous generation end here (one being shipped is dropped: the
            // new generation's own increments start from its snapshot and cover what it held).
            if (_state.Chain is { Staged: { } dropped } previous)
            {
                File.Delete(IncrementFile(previous.Generation, dropped.Increment));
            }

            // Generations older than the kept ones are retired in the same write that makes this one
            // the newest complete: a crash leaves either neither or both.
            var (kept, retired) = Retire(generations, _options.KeepGenerations, generation);

            // The previous chain, if it stays whole and reached past this snapshot, is what recovery
            // restores until this generation's own increments go further (BackupRecovery.FindAsync).
            var reach = _state.Chain is { Last: { } last, Broken: false } ending && ending.Generation == _state.LastComplete?.Generation
                && !retired.Any(g => g.Generation == ending.Generation) && last.CreatedAt > staged.CreatedAt
                ? last.CreatedAt
                : (DateTimeOffset?)null;
            _state = _state with
            {
                Staged = null,
                LastComplete = new CompleteGeneration(generation, staged.CreatedAt, _time.GetUtcNow()),
                Chain = new IncrementChain(generation, staged.BaseFiles ?? [], staged.BaseAuditBytes, 0, null, null, PreviousReach: reach),
                Generations = kept,
                Retiring = [.. _state.Retiring ?? [], .. retired],
            };
            _state.Write(_directory);
            File.Delete(StagedFile(generation));
            foreach (var old in retired)
            {
                LogRetired(_logger, old.Generation, generation, _options.KeepGenerations);
            }
        }

        LogComplete(_logger, generation);
    }

    // What of a generation is in the backend, its base objects up to `shipped`.
    private static List<GenerationObjects> RecordShipped(IReadOnlyList<GenerationObjects>? generations, long generation, long objects, long shipped)
    {
        var list = (generations ?? []).Where(g => g.Generation != generation).ToList();
        var previous = generations?.FirstOrDefault(g => g.Generation == generation);
        list.Add(previous is null ? new GenerationObjects(generation, objects, shipped, []) : previous with { Objects = objects, Shipped = shipped });
        return list;
    }

    // What of increment `increment` of `generation` is in the backend: `shipped` data objects, or all
    // `objects` once committed. Only for a generation recorded from its base (not one completed before
    // this record existed, whose base objects are unknown: it stays in the backend).
    private static IReadOnlyList<GenerationObjects>? RecordIncrementShipped(IReadOnlyList<GenerationObjects>? generations, long generation, long increment, long objects, long shipped)
    {
        if (generations?.FirstOrDefault(g => g.Generation == generation) is not { } entry || entry.Increments.Count != increment)
        {
            return generations;
        }

        var updated = shipped == objects
            ? entry with { Increments = [.. entry.Increments, objects], PartialIncrement = 0 }
            : entry with { PartialIncrement = shipped };
        return [.. generations.Select(g => g.Generation == generation ? updated : g)];
    }

    /// <summary>
    /// Splits the recorded generations, once <paramref name="newest"/> is complete, into those kept
    /// (the newest <paramref name="keep"/> complete ones and anything newer than the oldest of them)
    /// and those retired (everything older, complete or abandoned part-way). The newest complete
    /// generation is never retired, nor anything newer (a generation being shipped).
    /// </summary>
    internal static (IReadOnlyList<GenerationObjects> Kept, IReadOnlyList<GenerationObjects> Retired) Retire(IReadOnlyList<GenerationObjects> generations, int keep, long newest)
    {
        if (keep < 1)
        {
            // Every generation kept: nothing older than the newest will ever be retired, so its counts need not be kept either.
            return ([.. generations.Where(g => g.Generation >= newest)], []);
        }

        var complete = generations.Where(g => g.Complete && g.Generation <= newest).Select(g => g.Generation).OrderDescending().ToList();
        if (complete.Count <= keep)
        {
            return (generations, []);
        }

        var oldestKept = complete[keep - 1];
        return ([.. generations.Where(g => g.Generation >= oldestKept)], [.. generations.Where(g => g.Generation < oldestKept).OrderBy(g => g.Generation)]);
    }

    public RetiredObjects? PeekRetired(int max)
    {
        lock (_gate)
        {
            if (_state.Retiring is not [var first, ..])
            {
                return null;
            }

            if (_state.LastComplete is not { } newest || first.Generation >= newest.Generation || first.Generation == _state.Staged?.Generation)
            {
                // Never the backup itself nor what is being shipped after it (Retire never puts them
                // here; only a state edited by hand could): it is dropped from the retirement, not deleted.
                LogNotRetired(_logger, first.Generation);
                _state = _state with { Retiring = [.. _state.Retiring.Skip(1)], RetiringScheduled = 0 };
                _state.Write(_directory);
                return null;
            }

            // One more than asked tells whether this batch ends the generation.
            var from = _state.RetiringScheduled;
            var names = first.RetiredSequences().Skip((int)Math.Min(from, int.MaxValue)).Take(max + 1).Select(s => NameOf(first.Generation, s)).ToList();
            var last = names.Count <= max;
            return new RetiredObjects(last ? names : [.. names.Take(max)], new RetirementToken(first.Generation, from, last));
        }
    }

    public void RetirementScheduled(RetiredObjects retired)
    {
        var token = (RetirementToken)retired.Token;
        lock (_gate)
        {
            if (_state.Retiring is not [var first, ..] || first.Generation != token.Generation || _state.RetiringScheduled != token.From)
            {
                return;
            }

            _state = token.Last
                ? _state with { Retiring = [.. _state.Retiring.Skip(1)], RetiringScheduled = 0 }
                : _state with { RetiringScheduled = token.From + retired.Names.Count };
            _state.Write(_directory);
        }

        if (token.Last)
        {
            LogRetirementScheduled(_logger, token.Generation, token.From + retired.Names.Count);
        }
    }

    private void IncrementShipped(IncrementToken token)
    {
        lock (_gate)
        {
            if (_state.Chain is not { Staged: { } staged } chain || chain.Generation != token.Generation || staged.Increment != token.Increment || staged.Shipped != token.Index)
            {
                return;
            }

            var generations = RecordIncrementShipped(_state.Generations, token.Generation, token.Increment, staged.Objects, token.Index + 1);
            if (token.Index + 1 < staged.Objects)
            {
                _state = _state with { Chain = chain with { Staged = staged with { Shipped = token.Index + 1 } }, Generations = generations };
                _state.Write(_directory);
                return;
            }

            _state = _state with
            {
                Generations = generations,
                Chain = chain with
                {
                    Staged = null,
                    Shipped = [.. chain.Shipped, .. staged.Files],
                    AuditBytes = staged.AuditBytes,
                    Last = new CommittedIncrement(staged.Increment, staged.CreatedAt, _time.GetUtcNow()),
                },
            };
            _state.Write(_directory);
            PruneReferences();
            File.Delete(IncrementFile(token.Generation, token.Increment));
        }

        LogIncrementCommitted(_logger, token.Generation, token.Increment);
    }

    /// <summary>The backup's object names; set by the composition (the keys stay with <see cref="BackupKeys"/>).</summary>
    public required Func<long, ulong, Storage.ObjectName> NameOf { get; init; }

    public void Dispose()
    {
        _meter.Dispose();
        _staging.Dispose();
    }

    private const string StagingPrefix = "data/staging/";
    private const string AuditLogEntry = "data/audit/audit.log";
    private const string IndexEntry = "data/proxy.db";

    private string StagedFile(long generation) => Path.Combine(_directory, $"generation-{generation}.objects");

    private string IncrementFile(long generation, long increment) => Path.Combine(_directory, $"generation-{generation}.increment-{increment}.objects");

    private Stream OpenObject(string file, long index)
    {
        // One block in memory: a seekable body of known length, as an SDK needs to hash, send and retry it.
        using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var bytes = new byte[_blockSize];
        input.Position = index * _blockSize;
        input.ReadExactly(bytes);
        return new MemoryStream(bytes, writable: false);
    }

    [LoggerMessage(EventId = 9001, Level = LogLevel.Information, Message = "Backup: generation {Generation} staged, {Objects} objects ({Records} records, {Waiting} waiting blocks); shipping in dummy slots")]
    private static partial void LogStaged(ILogger logger, long generation, long objects, long records, long waiting);

    [LoggerMessage(EventId = 9002, Level = LogLevel.Information, Message = "Backup: generation {Generation} is complete in the backend")]
    private static partial void LogComplete(ILogger logger, long generation);

    [LoggerMessage(EventId = 9004, Level = LogLevel.Information, Message = "Backup: increment {Increment} of generation {Generation} staged, {Objects} objects ({Uploads} new waiting uploads); shipping in dummy slots")]
    private static partial void LogIncrementStaged(ILogger logger, long generation, long increment, long objects, int uploads);

    [LoggerMessage(EventId = 9005, Level = LogLevel.Information, Message = "Backup: increment {Increment} of generation {Generation} is committed in the backend")]
    private static partial void LogIncrementCommitted(ILogger logger, long generation, long increment);

    [LoggerMessage(EventId = 9006, Level = LogLevel.Warning, Message = "Backup: the staged file of increment {Increment} of generation {Generation} is missing; it is taken again if none of it had left, else no increment follows it and a new generation is due")]
    private static partial void LogIncrementFileMissing(ILogger logger, long generation, long increment);

    private sealed record GenerationToken(long Generation, long Index);

    private sealed record IncrementToken(long Generation, long Increment, long Index);

    private sealed record RetirementToken(long Generation, long From, bool Last);

    [LoggerMessage(EventId = 9007, Level = LogLevel.Information, Message = "Backup: generation {Generation} is retired (generation {Newest} is complete, {Keep} kept); its objects but the first are to be deleted at random times")]
    private static partial void LogRetired(ILogger logger, long generation, long newest, int keep);

    [LoggerMessage(EventId = 9008, Level = LogLevel.Information, Message = "Backup: the deletion of {Objects} object names of retired generation {Generation} is scheduled")]
    private static partial void LogRetirementScheduled(ILogger logger, long generation, long objects);

    [LoggerMessage(EventId = 9009, Level = LogLevel.Warning, Message = "Backup: generation {Generation} was to be retired but is the newest complete one or being shipped; it is kept")]
    private static partial void LogNotRetired(ILogger logger, long generation);

    [LoggerMessage(EventId = 9003, Level = LogLevel.Warning, Message = "Backup: the staged file of generation {Generation} is missing; the generation starts over")]
    private static partial void LogStagedFileMissing(ILogger logger, long generation);
}
