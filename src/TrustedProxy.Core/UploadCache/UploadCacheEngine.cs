using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>What the cache holds and has done, for /healthz and the metrics.</summary>
/// <param name="WaitingBlocks">Real blocks waiting for release.</param>
/// <param name="OldestAge">Age of the oldest waiting block.</param>
/// <param name="ReleasedBlocks">Real blocks released since start.</param>
/// <param name="DummyBlocks">Dummies written since start.</param>
/// <param name="DeletedBlocks">Objects deleted from the backend since start.</param>
/// <param name="BackendErrors">Failed backend operations since start.</param>
/// <param name="BackingOffUntil">While the backend fails: when the next attempt is.</param>
/// <param name="Alarm">The oldest block has waited longer than the configured alarm threshold, or the backend refused a write recently.</param>
/// <param name="RefusedWrites">Writes the backend refused for good since start (dummies dropped, real blocks quarantined).</param>
/// <param name="QuarantinedBlocks">Real blocks the backend refused, waiting to be retried on their own backoff.</param>
/// <param name="LastRefusal">The backend's answer to the most recent refused write (status and error code), and when.</param>
/// <param name="LastWriteAt">When the backend last accepted a write (null: not since start).</param>
public sealed record UploadCacheSnapshot(
    int WaitingBlocks, TimeSpan OldestAge, long ReleasedBlocks, long DummyBlocks, long DeletedBlocks, long BackendErrors, DateTimeOffset? BackingOffUntil, bool Alarm,
    long RefusedWrites = 0, int QuarantinedBlocks = 0, BackendRefusal? LastRefusal = null, DateTimeOffset? LastWriteAt = null);

/// <summary>A write the backend refused for good, as the backend said it.</summary>
public sealed record BackendRefusal(int Status, string Code, DateTimeOffset At, string Kind);

/// <summary>
/// The randomized upload cache (Haas et al.'s pseudonymity cache): blocks of acknowledged records
/// wait here, durable on local disk and encrypted, and go to the backend when the schedule says,
/// mixed with dummies; deletions reach the backend at random times too. One loop performs every
/// backend write, so the cloud sees the schedule's timing and nothing else. A failing backend
/// puts the loop into randomized exponential backoff; blocks stay cached until it answers. A write
/// the backend refuses for good never stalls the stream: a refused dummy is dropped (the next dummy
/// slot makes a fresh one), a refused real block goes into quarantine and is retried on its own
/// backoff while every other block keeps its slots; both are counted and raise the alarm.
/// </summary>
internal sealed partial class UploadCacheEngine : IDisposable
{
    // Names of retired cover objects scheduled per deletion sweep (one transaction of this many rows).
    private const int RetiredBatch = 2048;

    private readonly IReleaseSchedule _schedule;
    private readonly BlockIndex _blocks;
    private readonly BlockWriter _writer;
    private readonly IObjectStore _store;
    private readonly StagingArea _staging;
    private readonly IPaddingScheme _padding;
    private readonly UploadCacheOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _backendTurn = new(1, 1);
    private readonly Queue<CacheBlock> _readyDummies = new();
    private readonly PriorityQueue<CacheBlock, DateTimeOffset> _deferred = new();
    private readonly long[] _recentLengths = new long[256];
    private readonly Meter _meter;
    private readonly Counter<long> _releases;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _deletes;
    private readonly RetrievalGroups _groups;
    private readonly ICoverPayloadSource? _cover;
    private int _recentCount;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset _nextSweep;
    private DateTimeOffset? _backingOffUntil;
    private int _failures;
    private long _released;
    private long _dummies;
    private long _deleted;
    private long _backendErrors;
    private long _refusedWrites;
    private int _quarantined;
    private BackendRefusal? _lastRefusal;
    private DateTimeOffset? _lastWriteAt;
    private bool _alarmRaised;

    public UploadCacheEngine(
        BlockIndex blocks, BlockWriter writer, IObjectStore store, StagingArea staging, IPaddingScheme padding,
        IOptions<UploadCacheOptions> options, IOptions<ObliviousRetrievalOptions> retrieval, TimeProvider time, Random random, IMeterFactory meters, ILogger<UploadCacheEngine> logger,
        ICoverPayloadSource? cover = null)
    {
        _cover = cover;
        _blocks = blocks;
        _writer = writer;
        _store = store;
        _staging = staging;
        _padding = padding;
        _options = options.Value;
        _time = time;
        _random = random;
        _logger = logger;
        _schedule = ReleaseSchedules.Create(_options, random, time.GetUtcNow());
        _nextSweep = time.GetUtcNow();

        // Go on filling the last group after a restart (start-up, before any request).
        var (lastGroup, members) = blocks.LastGroupAsync().GetAwaiter().GetResult();
        _groups = new RetrievalGroups(retrieval.Value.GroupSize, lastGroup, members);

        _meter = meters.Create("TrustedProxy.UploadCache");
        _meter.CreateObservableGauge("trustedproxy.upload_cache.waiting_blocks", () => Snapshot().WaitingBlocks, "{block}", "Real blocks waiting in the upload cache");
        _meter.CreateObservableGauge("trustedproxy.upload_cache.oldest_age", () => Snapshot().OldestAge.TotalSeconds, "s", "Age of the oldest waiting block");
        _meter.CreateObservableGauge("trustedproxy.upload_cache.alarm", () => Snapshot().Alarm ? 1 : 0, "{alarm}", "1 while the oldest waiting block is older than AlarmAfterSeconds (the backend is stuck or refusing): alert on it");
        _releases = _meter.CreateCounter<long>("trustedproxy.upload_cache.releases", "{block}", "Blocks written to the backend (tag kind: real or dummy)");
        _errors = _meter.CreateCounter<long>("trustedproxy.upload_cache.backend_errors", "{error}", "Failed backend operations of the upload cache");
        _deletes = _meter.CreateCounter<long>("trustedproxy.upload_cache.deletes", "{block}", "Objects deleted from the backend");
    }

    public bool Enabled => _options.Enabled;

    /// <summary>How old the oldest waiting block may be before the cache counts as stuck.</summary>
    public double AlarmAfterSeconds => _options.AlarmAfterSeconds;

    public IPaddingScheme Padding => _padding;

    /// <summary>
    /// Takes in the blocks of a newly acknowledged record. A block admitted in the future (a
    /// relocated copy on hold) waits outside the schedule until then.
    /// </summary>
    public void Admit(IEnumerable<CacheBlock> blocks)
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            foreach (var block in blocks)
            {
                var from = block.RetryAt is { } retry && retry > block.AdmittedAt ? retry : block.AdmittedAt;
                if (from > now)
                {
                    _deferred.Enqueue(block, from);
                    continue;
                }

                _schedule.Admit(block.Id, block.AdmittedAt, block.DueAt);
                _recentLengths[_recentCount++ % _recentLengths.Length] = block.Length;
            }
        }

        _wake.TrySetResult();
    }

    // Under _gate.
    private void AdmitDeferred(DateTimeOffset now)
    {
        while (_deferred.TryPeek(out var block, out var at) && at <= now)
        {
            _deferred.Dequeue();
            _schedule.Admit(block.Id, block.AdmittedAt, block.DueAt);
            _recentLengths[_recentCount++ % _recentLengths.Length] = block.Length;
        }
    }

    /// <summary>Draws the deadline of a new block (persisted with it, so a restart keeps its hold).</summary>
    public DateTimeOffset DrawDeadline(DateTimeOffset admittedAt)
    {
        lock (_gate)
        {
            return _schedule.DrawDeadline(admittedAt);
        }
    }

    /// <summary>The retrieval group of the next object released (in release order, real or dummy).</summary>
    public long NextGroup()
    {
        lock (_gate)
        {
            return _groups.Assign();
        }
    }

    /// <summary>
    /// When a dummy, or a block retired by relocation or deletion, is to leave the backend (null:
    /// never, the default). Cover kept for good is what makes an object's lifetime say nothing of its
    /// kind: real blocks never expire, so neither may anything else (docs/privacy.md, "Lifetimes").
    /// </summary>
    public DateTimeOffset? DrawExpiry(DateTimeOffset now)
    {
        if (_options.MeanDummyLifetimeSeconds <= 0)
        {
            return null;
        }

        lock (_gate)
        {
            return now + ReleaseSchedules.Exponential(_random, TimeSpan.FromSeconds(_options.MeanDummyLifetimeSeconds));
        }
    }

    /// <summary>When a deleted record's released block is to be removed from the backend.</summary>
    public DateTimeOffset DrawDeleteTime(DateTimeOffset now)
    {
        if (!_options.Enabled)
        {
            return now;
        }

        lock (_gate)
        {
            var delay = ReleaseSchedules.Exponential(_random, TimeSpan.FromSeconds(_options.MeanDeleteDelaySeconds));
            return now + (delay > _options.MaxHold ? _options.MaxHold : delay);
        }
    }

    /// <summary>
    /// Deletes a record: hidden at once, cached blocks dropped (they never left), released blocks
    /// removed from the backend later at random times. Waits for a release of one of its blocks in
    /// progress, so nothing is put after the record is gone.
    /// </summary>
    public async Task<bool> DeleteRecordAsync(string handle, CancellationToken cancellationToken)
    {
        await _backendTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            var erase = _options.EraseDeletedObjects || !_options.Enabled;
            var dropped = await _blocks.DeleteRecordAsync(handle, erase, () => erase ? DrawDeleteTime(now) : DrawExpiry(now) ?? BlockIndex.Never).ConfigureAwait(false);
            if (dropped is null)
            {
                return false;
            }

            lock (_gate)
            {
                foreach (var id in dropped)
                {
                    _schedule.Remove(id);
                }
            }

            _staging.Delete(handle);
            if (!_options.Enabled)
            {
                await SweepDeletionsAsync(now, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        finally
        {
            _backendTurn.Release();
        }
    }

    /// <summary>
    /// After a restart: waiting blocks back into the schedule with their deadlines (quarantined ones
    /// only once their retry time has come, so a poisoned block is never first), unwritten dummies
    /// queued for the next dummy slots (one per slot, never a burst), finished records marked stored.
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        // Objects released before retrieval groups existed (index v3) join groups now, in random order.
        foreach (var id in await _blocks.UngroupedAsync().ConfigureAwait(false))
        {
            await _blocks.SetGroupAsync(id, NextGroup()).ConfigureAwait(false);
        }

        foreach (var handle in await _blocks.CompletedCachedRecordsAsync().ConfigureAwait(false))
        {
            _staging.Delete(handle);
        }

        var waiting = (await _blocks.InStateAsync(BlockState.Cached, BlockKind.Real).ConfigureAwait(false))
            .Where(b => b.Handle is not null && File.Exists(_staging.PathOf(b.Handle)))
            .ToList();
        if (_options.Enabled)
        {
            Admit(waiting);
        }
        else
        {
            // The cache was switched off with blocks still waiting: write them through now.
            foreach (var block in waiting)
            {
                await _writer.PutRealAsync(block, _time.GetUtcNow(), NextGroup, cancellationToken).ConfigureAwait(false);
            }
        }

        _quarantined = waiting.Count(b => b.Refusals > 0);
        foreach (var dummy in await _blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy).ConfigureAwait(false))
        {
            _readyDummies.Enqueue(dummy);
        }

        if (waiting.Count > 0 || _readyDummies.Count > 0)
        {
            LogRecovered(_logger, waiting.Count, _readyDummies.Count);
        }
    }

    public UploadCacheSnapshot Snapshot()
    {
        var now = _time.GetUtcNow();
        int waiting;
        DateTimeOffset? oldest;
        lock (_gate)
        {
            waiting = _schedule.Count + _deferred.Count;
            oldest = _schedule.OldestAdmittedAt;
        }

        var age = oldest is { } at && now > at ? now - at : TimeSpan.Zero;
        var refusal = _lastRefusal;
        var refusedRecently = refusal is not null && (now - refusal.At).TotalSeconds < _options.RefusalAlarmSeconds;
        return new UploadCacheSnapshot(
            waiting, age, Interlocked.Read(ref _released), Interlocked.Read(ref _dummies), Interlocked.Read(ref _deleted),
            Interlocked.Read(ref _backendErrors), _backingOffUntil, age.TotalSeconds > _options.AlarmAfterSeconds || refusedRecently || Volatile.Read(ref _quarantined) > 0,
            Interlocked.Read(ref _refusedWrites), Volatile.Read(ref _quarantined), refusal, _lastWriteAt);
    }

    /// <summary>The release loop; runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await StepAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Never let one bad block stop the loop: log, back off, go on.
                LogLoopError(_logger, ex);
                BackOff(_time.GetUtcNow());
            }
        }
    }

    /// <summary>
    /// When the loop next has something to do (a slot, a held block's admission, a deletion sweep,
    /// the end of a backoff). A driver on virtual time advances its clock to this and calls
    /// <see cref="StepAsync"/>, which then does that work without waiting.
    /// </summary>
    internal DateTimeOffset NextEventAt()
    {
        lock (_gate)
        {
            return NextEventAtLocked(_time.GetUtcNow());
        }
    }

    // Under _gate.
    private DateTimeOffset NextEventAtLocked(DateTimeOffset now)
    {
        AdmitDeferred(now);
        var next = _options.Enabled ? _schedule.NextEventAt(now) : DateTimeOffset.MaxValue;
        if (_deferred.TryPeek(out _, out var held) && held < next)
        {
            next = held;
        }

        next = next < _nextSweep ? next : _nextSweep;
        return _backingOffUntil is { } until && until > next ? until : next;
    }

    /// <summary>Waits for the next event and performs it.</summary>
    internal async Task StepAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        DateTimeOffset next;
        TaskCompletionSource wake;
        lock (_gate)
        {
            wake = _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            next = NextEventAtLocked(now);
        }

        if (next > now)
        {
            var delay = next - now;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var sleeping = Task.Delay(delay < TimeSpan.FromSeconds(30) ? delay : TimeSpan.FromSeconds(30), _time, timeout.Token);
            await Task.WhenAny(sleeping, wake.Task).ConfigureAwait(false);
            await timeout.CancelAsync().ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            return;
        }

        if (_backingOffUntil is { } backoff && backoff > now)
        {
            return;
        }

        if (now >= _nextSweep)
        {
            _nextSweep = now + ReleaseSchedules.Exponential(_random, TimeSpan.FromSeconds(10));
            await ScheduleRetiredCoverAsync(now).ConfigureAwait(false);
            await SweepDeletionsAsync(now, cancellationToken).ConfigureAwait(false);
            WatchAlarm();
        }

        if (!_options.Enabled)
        {
            return;
        }

        IReadOnlyList<Release> releases;
        lock (_gate)
        {
            releases = _schedule.Take(now);
        }

        for (var i = 0; i < releases.Count; i++)
        {
            try
            {
                await ReleaseAsync(releases[i], now, cancellationToken).ConfigureAwait(false);
                _failures = 0;
                _backingOffUntil = null;
                _lastWriteAt = now;
            }
            catch (BackendRefusedException ex)
            {
                // Refused for good: never a reason to stop the stream or to back off the others.
                CountError();
                await RefusedAsync(releases[i], ex.Status, ex.Code, now).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not BackendUnavailableException and not OperationCanceledException)
            {
                // One bad block (its cache file unreadable, say) must not take the other slots with it.
                CountError();
                LogLoopError(_logger, ex);
                await RefusedAsync(releases[i], 0, ex.GetType().Name, now).ConfigureAwait(false);
            }
            catch (BackendUnavailableException ex)
            {
                // Every block not written goes back to wait; the slot is lost, which the cloud cannot tell from a dummy not sent.
                lock (_gate)
                {
                    foreach (var block in releases.Skip(i).Where(r => !r.IsDummy).Select(r => r.Block!.Value))
                    {
                        _schedule.Admit(block.Id, block.AdmittedAt, block.DueAt);
                    }
                }

                // Backing off first: whoever sees the error counted sees the back-off in the snapshot too.
                var until = BackOff(now);
                CountError();
                LogBackendDown(_logger, ex.Backend, until);
                return;
            }
        }
    }

    private async Task ReleaseAsync(Release release, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (release.IsDummy)
        {
            // The dummy was made ready before its slot (PrepareDummyAsync); one that an outage kept
            // from being written is the next one used, under the same name, so nothing is orphaned.
            if (!_readyDummies.TryPeek(out _))
            {
                await PrepareDummyAsync(now).ConfigureAwait(false);
            }

            // An object waiting for cover (the backup) replaces the dummy's bytes and name when it has
            // the dummy's size: the same slot, the same size, one put, and the same random draws, so
            // the schedule goes on exactly as it would have.
            // A payload found already shipped (a crash after its put and rename, before its source
            // recorded it) is recorded now, and the slot carries the dummy.
            var covered = false;
            if (_cover?.Peek(_readyDummies.Peek().Length) is { } payload)
            {
                covered = await _writer.PutCoverAsync(payload, _readyDummies.Peek(), now, DrawExpiry(now), NextGroup, cancellationToken).ConfigureAwait(false);
                _cover.Shipped(payload);
            }

            if (!covered)
            {
                await _writer.PutDummyAsync(_readyDummies.Peek(), now, DrawExpiry(now), NextGroup, cancellationToken).ConfigureAwait(false);
            }

            Interlocked.Increment(ref _dummies);
            _releases.Add(1, new KeyValuePair<string, object?>("kind", "dummy"));
            _readyDummies.Dequeue();
            await PrepareDummyAsync(now).ConfigureAwait(false);
            return;
        }

        await _backendTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The record may have been deleted while the block waited for its turn.
            if (await _blocks.FindAsync(release.Block!.Value.Id).ConfigureAwait(false) is not { State: BlockState.Cached } block)
            {
                return;
            }

            await _writer.PutRealAsync(block, now, NextGroup, cancellationToken).ConfigureAwait(false);
            if (block.Refusals > 0)
            {
                Interlocked.Decrement(ref _quarantined);
            }

            Interlocked.Increment(ref _released);
            _releases.Add(1, new KeyValuePair<string, object?>("kind", "real"));
        }
        finally
        {
            _backendTurn.Release();
        }
    }

    /// <summary>Makes the next dummy ready ahead of its slot, so a slot's work is the same for either kind: one put of bytes already decided.</summary>
    private async Task PrepareDummyAsync(DateTimeOffset now)
    {
        if (_readyDummies.Count > 0)
        {
            return;
        }

        var dummy = new CacheBlock
        {
            ObjectName = ObjectName.NewRandom(),
            Length = _padding.DummyLength(RecentLength()),
            Kind = BlockKind.Dummy,
            State = BlockState.Cached,
            AdmittedAt = now,
            DueAt = now,
        };
        _readyDummies.Enqueue(dummy with { Id = await _blocks.InsertAsync(dummy).ConfigureAwait(false) });
    }

    /// <summary>
    /// A write the backend refused for good: a dummy is dropped (it never existed for the cloud),
    /// a real block goes into quarantine with its own randomized backoff, persisted so that a
    /// restart does not put it first. Either raises the alarm with the backend's own words.
    /// </summary>
    private async Task RefusedAsync(Release release, int status, string code, DateTimeOffset now)
    {
        Interlocked.Increment(ref _refusedWrites);
        _lastRefusal = new BackendRefusal(status, code, now, release.IsDummy ? "dummy" : "real");
        if (release.IsDummy)
        {
            if (_readyDummies.TryDequeue(out var refused))
            {
                await _blocks.RemoveAsync(refused.Id).ConfigureAwait(false);
            }

            await PrepareDummyAsync(now).ConfigureAwait(false);

            LogRefused(_logger, "dummy", status, code, "dropped");
            return;
        }

        if (await _blocks.FindAsync(release.Block!.Value.Id).ConfigureAwait(false) is not { State: BlockState.Cached } block)
        {
            return;
        }

        var refusals = block.Refusals + 1;
        var ceiling = Math.Min(_options.QuarantineMaxSeconds, _options.RetryBaseSeconds * Math.Pow(2, Math.Min(refusals, 30)));
        double fraction;
        lock (_gate)
        {
            fraction = _random.NextDouble();
        }

        var retryAt = now + TimeSpan.FromSeconds(ceiling * (0.5 + fraction / 2));
        await _blocks.QuarantineAsync(block.Id, refusals, retryAt).ConfigureAwait(false);
        if (block.Refusals == 0)
        {
            Interlocked.Increment(ref _quarantined);
        }

        Admit([block with { Refusals = refusals, RetryAt = retryAt }]);
        LogRefused(_logger, "real", status, code, $"quarantined until {retryAt:O}");
    }

    /// <summary>
    /// Objects the cover source no longer needs (an old backup generation's, put in dummy slots) leave
    /// the backend as a deleted record's blocks do: each row gets its own delete time
    /// (<see cref="DrawDeleteTime"/>) and the sweep deletes it when that comes, never at once. A batch
    /// per sweep keeps the loop's step short (the next slot must not wait on a long transaction); the
    /// source forgets a batch only once the index holds its delete times.
    /// </summary>
    private async Task ScheduleRetiredCoverAsync(DateTimeOffset now)
    {
        if (_cover?.PeekRetired(RetiredBatch) is not { } retired)
        {
            return;
        }

        if (retired.Names.Count > 0)
        {
            await _blocks.ScheduleDeletionAsync(retired.Names, () => DrawDeleteTime(now)).ConfigureAwait(false);
        }

        _cover.RetirementScheduled(retired);
    }

    /// <summary>Deletes what is due: blocks of deleted records and expired dummies, each at its own random time.</summary>
    private async Task SweepDeletionsAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var block in await _blocks.DueForDeletionAsync(now, 256).ConfigureAwait(false))
        {
            try
            {
                await _store.DeleteAsync(block.ObjectName, cancellationToken).ConfigureAwait(false);
            }
            catch (BackendUnavailableException ex)
            {
                // Backing off first: whoever sees the error counted sees the back-off in the snapshot too.
                var until = BackOff(now);
                CountError();
                LogBackendDown(_logger, ex.Backend, until);
                return;
            }

            await _blocks.RemoveAsync(block.Id).ConfigureAwait(false);
            Interlocked.Increment(ref _deleted);
            _deletes.Add(1);
        }
    }

    private void CountError()
    {
        Interlocked.Increment(ref _backendErrors);
        _errors.Add(1);
    }

    // Exponential backoff with full jitter: uniform in [0, min(max, base * 2^failures)].
    private DateTimeOffset BackOff(DateTimeOffset now)
    {
        var ceiling = Math.Min(_options.RetryMaxSeconds, _options.RetryBaseSeconds * Math.Pow(2, Math.Min(_failures++, 30)));
        double fraction;
        lock (_gate)
        {
            fraction = _random.NextDouble();
        }

        var until = now + TimeSpan.FromSeconds(Math.Max(_options.RetryBaseSeconds / 10, fraction * ceiling));
        _backingOffUntil = until;
        return until;
    }

    private void WatchAlarm()
    {
        var snapshot = Snapshot();
        if (snapshot.Alarm && !_alarmRaised)
        {
            if (snapshot.LastRefusal is { } refusal && snapshot.OldestAge.TotalSeconds <= _options.AlarmAfterSeconds)
            {
                LogRefusalAlarm(_logger, refusal.Status, refusal.Code, snapshot.RefusedWrites, snapshot.QuarantinedBlocks);
            }
            else
            {
                LogStuck(_logger, snapshot.OldestAge.TotalSeconds, snapshot.WaitingBlocks);
            }
        }

        _alarmRaised = snapshot.Alarm;
    }

    private long? RecentLength()
    {
        lock (_gate)
        {
            return _recentCount == 0 ? null : _recentLengths[_random.Next(Math.Min(_recentCount, _recentLengths.Length))];
        }
    }

    public void Dispose()
    {
        _meter.Dispose();
        _backendTurn.Dispose();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Upload cache: the {Backend} backend is unavailable; blocks stay cached, next attempt at {RetryAt:O}")]
    private static partial void LogBackendDown(ILogger logger, string backend, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Error, Message = "Upload cache: the oldest block has waited {AgeSeconds:F0} s, longer than the alarm threshold; {Waiting} blocks waiting (is the backend stuck?)")]
    private static partial void LogStuck(ILogger logger, double ageSeconds, int waiting);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Information, Message = "Upload cache recovered {Blocks} waiting block(s) and {Dummies} unwritten dummy object(s)")]
    private static partial void LogRecovered(ILogger logger, int blocks, int dummies);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Error, Message = "Upload cache: unexpected error in the release loop")]
    private static partial void LogLoopError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Upload cache: the backend refused a {Kind} write ({Status} {Code}); {Outcome}")]
    private static partial void LogRefused(ILogger logger, string kind, int status, string code, string outcome);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Error, Message = "Upload cache: the backend refuses writes ({Status} {Code}): {Refused} refused since start, {Quarantined} real block(s) in quarantine; check the store's configuration")]
    private static partial void LogRefusalAlarm(ILogger logger, int status, string code, long refused, int quarantined);
}
