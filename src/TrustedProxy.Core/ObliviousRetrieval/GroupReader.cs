using System.Buffers;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>The record moved to new ciphertext (relocated after another read) since its entry was read; read it again.</summary>
internal sealed class RecordRelocatedException(string handle) : Exception($"record {handle} was relocated while it was being read");

/// <summary>
/// Reads records' blocks from the cloud the oblivious way. Under the <c>epochs</c> schedule a
/// request's groups become one stream of the <see cref="ReadSchedule"/>, read at the ticks of
/// <see cref="RunAsync"/> among cover streams drawn from the <see cref="CoverModel"/>; a retrieval
/// of many records (a study over WADO-RS) is announced first with <see cref="PrefetchAsync"/>, so that
/// all of it is one stream read at full pace rather than one stream per record. Every member of a
/// group is read whole, in random order. Under <c>immediate</c> a request reads its groups at once.
/// Objects without a group (released before groups existed, until the upload cache's recovery
/// assigns them one) are read alone, at once.
/// </summary>
internal sealed partial class GroupReader : IDisposable
{
    /// <summary>The learned model is written at most this often (and at each snapshot, and on stopping): a crash loses at most this much learning.</summary>
    private static readonly TimeSpan SaveInterval = TimeSpan.FromHours(1);

    private readonly IObjectStore _store;
    private readonly ObjectMask _mask;
    private readonly BlockIndex _blocks;
    private readonly ObliviousRetrievalOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    /// <summary>The retrieval (prefetch) the current request belongs to, if any.</summary>
    private static readonly AsyncLocal<object?> CurrentRetrieval = new();

    private readonly Lock _gate = new();
    private readonly CoverModel _cover;
    private readonly ReadSchedule _schedule;
    private readonly Dictionary<long, PendingGroup> _pending = [];
    private readonly ReadAhead _readAhead;
    private readonly Meter _meter;
    private readonly Counter<long> _reads;
    private readonly int _blockSize;
    private DateTimeOffset _savedAt;
    private DateTimeOffset _savedSnapshotAt;

    public GroupReader(
        IObjectStore store, BlockIndex blocks, ObjectMask mask, IOptions<ObliviousRetrievalOptions> options, IOptions<UploadCacheOptions> uploads,
        TimeProvider time, Random random, IMeterFactory meters, ILogger<GroupReader> logger)
        : this(store, blocks, mask, options, uploads, time, random, meters, logger, ReadScheduleControl.None, null)
    {
    }

    internal GroupReader(
        IObjectStore store, BlockIndex blocks, ObjectMask mask, IOptions<ObliviousRetrievalOptions> options, IOptions<UploadCacheOptions> uploads,
        TimeProvider time, Random random, IMeterFactory meters, ILogger<GroupReader> logger, ReadScheduleControl control, CoverModel? cover)
    {
        _store = store;
        _mask = mask;
        _blocks = blocks;
        _options = options.Value;
        _time = time;
        _random = random;
        _logger = logger;
        _blockSize = uploads.Value.BlockSizeBytes;
        var now = time.GetUtcNow();
        _cover = cover ?? new CoverModel(CoverModelSettings.From(_options, _blockSize), now, LoadState());
        _schedule = new ReadSchedule(_options, _cover, random, now, control);
        _readAhead = new ReadAhead(_options.ReadAheadMemoryBytes, _options.ReadAheadDirectory);
        _savedAt = now;
        _savedSnapshotAt = _cover.SnapshotAt;
        _meter = meters.Create("TrustedProxy.ObliviousRetrieval");
        _meter.CreateObservableGauge("trustedproxy.retrieval.streams", () => { lock (_gate) { return _schedule.Active + _schedule.Waiting; } }, "{stream}", "Read streams being read or waiting");
        _reads = _meter.CreateCounter<long>("trustedproxy.retrieval.group_reads", "{group}", "Retrieval groups read from the backend (tag kind: wanted or cover)");
    }

    private bool Epochs => _options.Schedule == ObliviousRetrievalOptions.Epochs;

    /// <summary>Bytes read for retrievals and held in memory until taken (for tests of the bound).</summary>
    internal long ReadAheadInMemoryBytes => _readAhead.InMemoryBytes;

    /// <summary>Read-ahead files open (for tests).</summary>
    internal int ReadAheadFiles => _readAhead.Files;

    /// <summary>When the next epoch is due (for drivers of virtual time).</summary>
    internal DateTimeOffset NextEpochAt
    {
        get
        {
            lock (_gate)
            {
                return _schedule.NextEpochAt;
            }
        }
    }

    /// <summary>Streams being read or waiting (for drivers of virtual time).</summary>
    internal int Streams
    {
        get
        {
            lock (_gate)
            {
                return _schedule.Active + _schedule.Waiting;
            }
        }
    }

    /// <summary>What the read schedule costs now, for the start-up line and the docs: cover streams a day, their mean size, bytes a day at idle.</summary>
    public (double CoverStreamsPerDay, double MeanStreamBytes, double IdleBytesPerDay) DailyCost()
    {
        lock (_gate)
        {
            var perDay = _cover.CoverStreamsPerSecond(_time.GetUtcNow()) * 86_400;
            var bytes = _cover.MeanStreamGroups * _options.GroupSize * _blockSize;
            return (perDay, bytes, perDay * bytes);
        }
    }

    /// <summary>
    /// Announces a retrieval of many records: their cloud blocks become one stream now, so that the
    /// record-by-record reads that follow find their blocks read or on the way. Dispose when the
    /// retrieval ends: blocks read for it and never taken are dropped (the stream itself is read to
    /// its end whatever happens, see <see cref="ReadSchedule"/>).
    /// </summary>
    public Task<IDisposable> PrefetchAsync(IReadOnlyList<RecordEntry> entries, IReadOnlyList<RecordEntry> local, CancellationToken cancellationToken)
    {
        if (!Epochs)
        {
            return Task.FromResult<IDisposable>(NoPrefetch.Instance);
        }

        // Set here, synchronously, so that it flows on in the caller's context: the record reads of
        // this retrieval that follow meet this retrieval's claim, not another's.
        var claim = new object();
        CurrentRetrieval.Value = claim;
        return PrefetchCoreAsync(entries, local, claim, cancellationToken);
    }

    /// <summary>
    /// A record read on its own (not within a prefetched retrieval) was served from the proxy: the
    /// stream its read would have started starts anyway (<see cref="ObliviousRetrievalOptions.StreamForLocalReads"/>).
    /// </summary>
    public Task ServedLocallyAsync(RecordEntry entry) =>
        !Epochs || !_options.StreamForLocalReads || CurrentRetrieval.Value is not null ? Task.CompletedTask : WantLocalAsync(GroupsOf([entry]));

    private async Task<IDisposable> PrefetchCoreAsync(IReadOnlyList<RecordEntry> entries, IReadOnlyList<RecordEntry> local, object claim, CancellationToken cancellationToken)
    {
        var groups = new List<(long Group, long Block)>();
        var localGroups = _options.StreamForLocalReads ? GroupsOf(local) : 0;
        foreach (var entry in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var blocks = await _blocks.OfRecordAsync(entry.Handle).ConfigureAwait(false);
            if (blocks.Count > 0 && blocks.All(b => b.State == BlockState.Released && b.GroupId is not null))
            {
                groups.AddRange(blocks.Select(b => (b.GroupId!.Value, b.Id)));
            }
            else if (_options.StreamForLocalReads)
            {
                // Moved back to the cache meanwhile: served locally, counted as such.
                localGroups += GroupsOf([entry]);
            }
        }

        if (groups.Count == 0)
        {
            if (localGroups > 0)
            {
                await WantLocalAsync(localGroups).ConfigureAwait(false);
            }

            return NoPrefetch.Instance;
        }

        var avoid = await OtherRecordsOfTheirStudiesAsync(entries.Concat(local).ToList()).ConfigureAwait(false);
        return new Prefetched(this, await EnqueueAsync(groups, claim, localGroups, avoid).ConfigureAwait(false), claim);
    }

    /// <summary>
    /// The groups of the other records of these records' studies, which their stream's padding
    /// leaves out: padding lies next to the wanted groups, a study's records are written close
    /// together, and a later request for the whole study would otherwise read as wanted what this
    /// one read as padding, which links the two (overlap, docs/privacy.md, "With the stream floor").
    /// </summary>
    private async Task<IReadOnlyCollection<long>?> OtherRecordsOfTheirStudiesAsync(IReadOnlyList<RecordEntry> entries)
    {
        var handles = entries.Select(e => e.Handle).ToList();
        var avoid = new List<long>();
        foreach (var study in entries.Select(e => e.StudyInstanceUid).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            avoid.AddRange(await _blocks.GroupsOfStudyAsync(study, handles).ConfigureAwait(false));
        }

        return avoid.Count == 0 ? null : avoid;
    }

    /// <summary>Groups' worth of these records' stored bytes (what reading them from the cloud would take).</summary>
    private long GroupsOf(IEnumerable<RecordEntry> entries)
    {
        var blocks = entries.Sum(e => Math.Max(1, (e.StoredLength + _blockSize - 1) / _blockSize));
        return (blocks + _options.GroupSize - 1) / _options.GroupSize;
    }

    private async Task WantLocalAsync(long localGroups)
    {
        var (last, _) = await _blocks.LastGroupAsync().ConfigureAwait(false);
        if (last < 0)
        {
            return;
        }

        lock (_gate)
        {
            _schedule.WantLocal(localGroups, last, _time.GetUtcNow());
        }
    }

    /// <summary>Writes the record's blocks, in order, to <paramref name="destination"/> (positioned at 0).</summary>
    public async Task ReadAsync(RecordEntry entry, Stream destination, CancellationToken cancellationToken)
    {
        var wanted = await _blocks.OfRecordAsync(entry.Handle).ConfigureAwait(false);
        if (wanted.Any(b => b.State != BlockState.Released))
        {
            throw new RecordRelocatedException(entry.Handle);
        }

        var received = new Dictionary<long, byte[]>();
        var ungrouped = wanted.Where(b => b.GroupId is null).ToList();
        if (ungrouped.Count > 0)
        {
            Merge(received, await ReadMembersAsync(ungrouped, ungrouped.Select(b => b.Id).ToHashSet(), cancellationToken).ConfigureAwait(false));
        }

        var grouped = wanted.Where(b => b.GroupId is not null).Select(b => (b.GroupId!.Value, b.Id)).ToList();
        if (Epochs && grouped.Count > 0)
        {
            var avoid = CurrentRetrieval.Value is null ? await OtherRecordsOfTheirStudiesAsync([entry]).ConfigureAwait(false) : null;
            var held = await EnqueueAsync(grouped, claim: null, avoid: avoid).ConfigureAwait(false);
            try
            {
                foreach (var (_, pending) in held)
                {
                    foreach (var (id, block) in await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false))
                    {
                        received[id] = await block.GetAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                // Taken: one retrieval's claim on these bytes is met.
                Release(held, claim: null);
            }
        }
        else if (grouped.Count > 0)
        {
            // One shuffled plan across all the groups: the cloud cannot tell where one group ends.
            var members = await _blocks.GroupMembersAsync(grouped.Select(g => g.Item1).Distinct().ToList()).ConfigureAwait(false);
            Merge(received, await ReadMembersAsync(members, wanted.Select(b => b.Id).ToHashSet(), cancellationToken).ConfigureAwait(false));
        }

        foreach (var block in wanted)
        {
            if (!received.TryGetValue(block.Id, out var bytes))
            {
                // Not among its group's released members any more: deleted or relocated meanwhile.
                throw new RecordRelocatedException(entry.Handle);
            }

            if (bytes.Length != block.Length)
            {
                // Padding is not authenticated (it carries nothing), but every object has a known size.
                throw new EnvelopeIntegrityException($"a block of the record has {bytes.Length} bytes in the backend, not {block.Length}");
            }

            await destination.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The epoch loop; returns at once under the immediate schedule.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!Epochs)
        {
            return;
        }

        var (streams, bytes, idle) = DailyCost();
        LogCost(_logger, _options.EpochSeconds, _options.GroupsPerEpoch * _options.GroupSize * (double)_blockSize / 1e6 / _options.EpochSeconds, _options.MaxStreams,
            streams.ToString("0.#", CultureInfo.InvariantCulture), (bytes / 1e6).ToString("0", CultureInfo.InvariantCulture), (idle / 1e9).ToString("0.#", CultureInfo.InvariantCulture), _options.IdleFloorGigabytesPerDay);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                DateTimeOffset due;
                lock (_gate)
                {
                    due = _schedule.NextEpochAt;
                }

                var now = _time.GetUtcNow();
                if (due > now)
                {
                    await Task.Delay(due - now, _time, cancellationToken).ConfigureAwait(false);
                }

                await ReadEpochAsync(cancellationToken).ConfigureAwait(false);
                SaveState(force: false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            lock (_gate)
            {
                foreach (var pending in _pending.Values)
                {
                    pending.Done.TrySetCanceled(cancellationToken);
                    Forget(pending);
                }

                _pending.Clear();
            }

            SaveState(force: true);
        }
    }

    public void Dispose()
    {
        _meter.Dispose();
        _readAhead.Dispose();
    }

    /// <summary>A group leaves the pending set: whatever it still holds is let go (under the gate).</summary>
    private void Forget(PendingGroup pending)
    {
        if (pending.Done.Task.IsCompletedSuccessfully)
        {
            var blocks = pending.Done.Task.Result;
            foreach (var block in blocks.Values)
            {
                _readAhead.Forget(block);
            }

            // The bytes go too, not only their count: a retrieval's prefetch lists its groups until
            // the retrieval ends, and would otherwise keep every block of the study reachable.
            blocks.Clear();
        }
    }

    /// <summary>
    /// Queues the groups not already waiting as one stream, and holds every one of them until
    /// <see cref="Release"/>: a reader while it waits, a prefetch (<paramref name="claim"/>) until one
    /// reader takes the bytes or the prefetch ends. A group's bytes stay while anybody holds it.
    /// </summary>
    private async Task<IReadOnlyList<(long Group, PendingGroup Pending)>> EnqueueAsync(IReadOnlyList<(long Group, long Block)> blocks, object? claim, long localGroups = 0, IReadOnlyCollection<long>? avoid = null)
    {
        var (last, _) = await _blocks.LastGroupAsync().ConfigureAwait(false);
        lock (_gate)
        {
            var held = new Dictionary<long, PendingGroup>();
            var created = new List<long>();
            foreach (var (group, block) in blocks)
            {
                if (!_pending.TryGetValue(group, out var pending))
                {
                    pending = new PendingGroup();
                    _pending.Add(group, pending);
                    created.Add(group);
                }

                pending.Wanted.Add(block);
                if (held.TryAdd(group, pending))
                {
                    if (claim is null)
                    {
                        pending.Readers++;
                    }
                    else
                    {
                        pending.Claims.Add(claim);
                    }
                }
            }

            // Groups another request's stream is already reading serve this one too, but a request
            // that started no stream of its own (or a smaller one) would show an insider who knows
            // when it was made that it asked for something already in flight: the same record as a
            // request just before it. So they count towards its class as local ones do, and a request
            // wholly in flight starts a stream shaped as cover. (Reads within a prefetched retrieval
            // meet their own prefetch's groups: that request's stream has started already.)
            var joined = _options.StreamForLocalReads && (claim is not null || CurrentRetrieval.Value is null) ? held.Count - created.Count : 0;
            if (created.Count > 0)
            {
                _schedule.Want(created, Math.Max(last, created.Max()), localGroups + joined, avoid);
            }
            else if (joined + localGroups > 0 && last >= 0)
            {
                _schedule.WantLocal(joined + localGroups, last, _time.GetUtcNow());
            }

            return held.Select(p => (p.Key, p.Value)).ToList();
        }
    }

    /// <summary>
    /// Lets go of held groups: a reader (<paramref name="claim"/> null) that took the bytes also meets
    /// the claim of the retrieval it belongs to; a prefetch withdraws its own claim if it is still there.
    /// </summary>
    private void Release(IEnumerable<(long Group, PendingGroup Pending)> held, object? claim)
    {
        lock (_gate)
        {
            foreach (var (group, pending) in held)
            {
                if (claim is null)
                {
                    pending.Readers--;
                    if (pending.Done.Task.IsCompletedSuccessfully && CurrentRetrieval.Value is { } own)
                    {
                        pending.Claims.Remove(own);
                    }
                }
                else
                {
                    pending.Claims.Remove(claim);
                }

                if (pending.Unheld && pending.Done.Task.IsCompleted && _pending.GetValueOrDefault(group) == pending)
                {
                    _pending.Remove(group);
                    Forget(pending);
                }
            }
        }
    }

    /// <summary>Ground truth for the privacy harness: each epoch's reads as planned (object, whether a request waits for it, stream; negative streams are cover).</summary>
    internal Action<DateTimeOffset, IReadOnlyList<(ObjectName Name, bool Wanted, long Stream)>>? EpochPlanned { get; set; }

    /// <summary>One epoch: the loop's step, which a driver of virtual time calls itself at <see cref="NextEpochAt"/>.</summary>
    internal async Task ReadEpochAsync(CancellationToken cancellationToken)
    {
        var (last, filled) = await _blocks.LastGroupAsync().ConfigureAwait(false);
        IReadOnlyList<EpochRead> plan;
        lock (_gate)
        {
            plan = _schedule.TakeEpoch(_time.GetUtcNow(), filled > 0 ? last : -1);
        }

        if (plan.Count == 0)
        {
            return;
        }

        var members = (await _blocks.GroupMembersAsync(plan.Select(r => r.Group).Distinct().ToList()).ConfigureAwait(false)).ToLookup(m => m.GroupId!.Value);
        var reads = new List<(CacheBlock Member, PendingGroup? Pending, long Stream)>();
        lock (_gate)
        {
            foreach (var read in plan)
            {
                var pending = _pending.GetValueOrDefault(read.Group) is { Done.Task.IsCompleted: false } p ? p : null;
                var group = members[read.Group].ToArray();
                _random.Shuffle(group);
                reads.AddRange(group.Select(m => (m, pending, read.Stream)));
                if (group.Length == 0)
                {
                    // Nothing left of it (deleted, or the store is young): the reader finds its blocks missing.
                    pending?.Done.TrySetResult([]);
                }
            }
        }

        EpochPlanned?.Invoke(_time.GetUtcNow(), reads.Select(r => (r.Member.ObjectName, r.Pending is { } p && p.Wanted.Contains(r.Member.Id), r.Stream)).ToList());
        var results = reads.Where(r => r.Pending is not null).Select(r => r.Pending!).Distinct().ToDictionary(p => p, _ => new Dictionary<long, byte[]>());
        var failures = new Dictionary<PendingGroup, Exception>();
        await Parallel.ForEachAsync(reads, new ParallelOptions { MaxDegreeOfParallelism = _options.ReadConcurrency, CancellationToken = cancellationToken }, async (read, token) =>
        {
            try
            {
                var wanted = read.Pending is { } p && p.Wanted.Contains(read.Member.Id);
                var bytes = await ReadWholeAsync(read.Member, keep: wanted, token).ConfigureAwait(false);
                if (read.Pending is { } pending)
                {
                    if (bytes is not null)
                    {
                        lock (results)
                        {
                            results[pending][read.Member.Id] = bytes;
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
            {
                if (read.Pending is { } pending && (pending.Wanted.Contains(read.Member.Id) || ex is not StoredObjectNotFoundException))
                {
                    lock (results)
                    {
                        failures.TryAdd(pending, ex);
                    }
                }
                else if (read.Pending is null)
                {
                    // A failed cover read harms nobody; the next epoch comes as usual.
                    LogCoverReadFailed(_logger, ex.GetType().Name);
                }
            }
        }).ConfigureAwait(false);

        foreach (var (pending, error) in failures)
        {
            pending.Done.TrySetException(error);
        }

        foreach (var (pending, kept) in results)
        {
            if (failures.ContainsKey(pending))
            {
                continue;
            }

            // Bytes a reader waits for now are taken at once; read-ahead for a retrieval beyond the
            // memory budget waits on disk.
            bool awaited, unheld;
            lock (_gate)
            {
                awaited = pending.Readers > 0;
                unheld = pending.Unheld;
            }

            var held = new Dictionary<long, HeldBlock>(kept.Count);
            try
            {
                foreach (var (id, bytes) in kept)
                {
                    if (!unheld)
                    {
                        held[id] = await _readAhead.HoldAsync(bytes, awaited, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex)
            {
                foreach (var block in held.Values)
                {
                    _readAhead.Forget(block);
                }

                pending.Done.TrySetException(ex);
                continue;
            }

            pending.Done.TrySetResult(held);
        }

        lock (_gate)
        {
            // Nobody holds them any more (a cancelled request, a prefetch let go): drop the bytes.
            foreach (var group in plan.Select(r => r.Group).Distinct())
            {
                if (_pending.TryGetValue(group, out var pending) && pending.Unheld && pending.Done.Task.IsCompleted)
                {
                    _pending.Remove(group);
                    Forget(pending);
                }
            }
        }

        _reads.Add(reads.Count(r => r.Pending is not null), new KeyValuePair<string, object?>("kind", "wanted"));
        _reads.Add(reads.Count(r => r.Pending is null), new KeyValuePair<string, object?>("kind", "cover"));
    }

    /// <summary>Reads an object whole (a read cut short would mark it as a decoy); returns its unmasked bytes when kept.</summary>
    private async Task<byte[]?> ReadWholeAsync(CacheBlock member, bool keep, CancellationToken cancellationToken)
    {
        await using var source = await _store.OpenReadAsync(member.ObjectName, cancellationToken).ConfigureAwait(false);
        if (!keep)
        {
            // Read to its end and dropped: through a pooled buffer, not one large array per object.
            var scratch = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                while (await source.ReadAsync(scratch, cancellationToken).ConfigureAwait(false) > 0)
                {
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }

            return null;
        }

        // One array of the size the index knows; an object of another size (the reader refuses it)
        // comes back at its own size.
        var bytes = new byte[checked((int)member.Length)];
        var read = await source.ReadAtLeastAsync(bytes, bytes.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read < bytes.Length)
        {
            bytes = bytes[..read];
        }
        else
        {
            var rest = new MemoryStream();
            await source.CopyToAsync(rest, cancellationToken).ConfigureAwait(false);
            if (rest.Length > 0)
            {
                bytes = [.. bytes, .. rest.ToArray()];
            }
        }

        if (member.Masked)
        {
            _mask.Apply(member.ObjectName, bytes);
        }

        return bytes;
    }

    /// <summary>Reads every member whole, in random order, and keeps the bytes of the wanted ones.</summary>
    private async Task<Dictionary<long, byte[]>> ReadMembersAsync(IReadOnlyList<CacheBlock> members, IReadOnlySet<long> wanted, CancellationToken cancellationToken)
    {
        IReadOnlyList<CacheBlock> plan;
        lock (_random)
        {
            plan = RetrievalGroups.ReadPlan(members, _random);
        }

        var kept = new Dictionary<long, byte[]>();
        foreach (var member in plan)
        {
            try
            {
                if (await ReadWholeAsync(member, wanted.Contains(member.Id), cancellationToken).ConfigureAwait(false) is { } bytes)
                {
                    kept[member.Id] = bytes;
                }
            }
            catch (StoredObjectNotFoundException) when (!wanted.Contains(member.Id))
            {
                // A decoy deleted meanwhile (its expiry came) is no reason to fail someone else's read.
            }
        }

        return kept;
    }

    private static void Merge(Dictionary<long, byte[]> into, Dictionary<long, byte[]> from)
    {
        foreach (var (id, bytes) in from)
        {
            into[id] = bytes;
        }
    }

    private CoverModelState? LoadState()
    {
        if (_options.CoverModelFile is not { } path || !File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<CoverModelState>(SecretFile.ReadText(path));
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException or FormatException)
        {
            // Starting again from the declared load is safe; refusing to start is not needed.
            LogCoverModelUnreadable(_logger, ex.GetType().Name);
            return null;
        }
    }

    /// <summary>Keeps the learned model: at each new snapshot, at most once per <see cref="SaveInterval"/> otherwise, and when the loop stops.</summary>
    private void SaveState(bool force)
    {
        if (_options.CoverModelFile is not { } path)
        {
            return;
        }

        CoverModelState state;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (!force && _cover.SnapshotAt == _savedSnapshotAt && now - _savedAt < SaveInterval)
            {
                return;
            }

            state = _cover.State();
            _savedAt = now;
            _savedSnapshotAt = state.SnapshotAt;
        }

        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            SecretFile.WriteText(path, JsonSerializer.Serialize(state));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogCoverModelNotSaved(_logger, ex.GetType().Name);
        }
    }

    [LoggerMessage(EventId = 4201, Level = LogLevel.Warning, Message = "A cover read failed ({Error}); the schedule goes on")]
    private static partial void LogCoverReadFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Warning, Message = "The learned read model could not be read ({Error}); starting again from the declared load")]
    private static partial void LogCoverModelUnreadable(ILogger logger, string error);

    [LoggerMessage(EventId = 4203, Level = LogLevel.Warning, Message = "The learned read model could not be saved ({Error}); it is kept in memory")]
    private static partial void LogCoverModelNotSaved(ILogger logger, string error);

    [LoggerMessage(EventId = 4204, Level = LogLevel.Information, Message = "Oblivious reads: an epoch every {EpochSeconds} s, {MegabytesPerSecond:0.#} MB/s per stream, up to {MaxStreams} streams; cover now {CoverStreamsPerDay} streams a day of about {StreamMegabytes} MB, {IdleGigabytesPerDay} GB a day read when nobody asks (floor {FloorGigabytesPerDay} GB); wanted reads add their own bytes, padded to a size class")]
    private static partial void LogCost(ILogger logger, double epochSeconds, double megabytesPerSecond, int maxStreams, string coverStreamsPerDay, string streamMegabytes, string idleGigabytesPerDay, double floorGigabytesPerDay);

    private sealed class PendingGroup
    {
        public HashSet<long> Wanted { get; } = [];

        /// <summary>Readers waiting for the group (under the reader's gate).</summary>
        public int Readers { get; set; }

        /// <summary>Prefetches whose claim on the bytes no reader has met yet (under the reader's gate).</summary>
        public HashSet<object> Claims { get; } = [];

        public bool Unheld => Readers <= 0 && Claims.Count == 0;

        public TaskCompletionSource<Dictionary<long, HeldBlock>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Prefetched(GroupReader reader, IReadOnlyList<(long Group, PendingGroup Pending)> held, object claim) : IDisposable
    {
        private int _disposed;

        // Read and never taken (the client went away, or a record was served from the cache): dropped.
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                reader.Release(held, claim);
                if (CurrentRetrieval.Value == claim)
                {
                    CurrentRetrieval.Value = null;
                }
            }
        }
    }

    private sealed class NoPrefetch : IDisposable
    {
        public static readonly NoPrefetch Instance = new();

        public void Dispose()
        {
        }
    }
}
