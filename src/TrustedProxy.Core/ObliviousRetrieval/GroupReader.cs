using System.Diagnostics.Metrics;
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
/// Reads a record's blocks from the cloud the oblivious way: each block by reading every member
/// of its retrieval group, whole, in random order, so that the cloud sees N indistinguishable reads
/// and cannot tell which was wanted. Under the constant-rate schedule the group reads happen in
/// the slots of <see cref="RunAsync"/> (wanted groups first, cover reads otherwise), so the stream
/// of reads the cloud sees does not depend on requests at all; under <c>immediate</c> a request
/// reads its groups at once. Objects without a group (released before groups existed, until the
/// upload cache's recovery assigns them one) are read alone, at once.
/// </summary>
internal sealed partial class GroupReader : IDisposable
{
    private readonly IObjectStore _store;
    private readonly ObjectMask _mask;
    private readonly BlockIndex _blocks;
    private readonly ObliviousRetrievalOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly GroupReadQueue _queue;
    private readonly Dictionary<long, PendingGroup> _pending = [];
    private readonly Meter _meter;
    private readonly Counter<long> _reads;

    public GroupReader(IObjectStore store, BlockIndex blocks, ObjectMask mask, IOptions<ObliviousRetrievalOptions> options, TimeProvider time, Random random, IMeterFactory meters, ILogger<GroupReader> logger)
    {
        _store = store;
        _mask = mask;
        _blocks = blocks;
        _options = options.Value;
        _time = time;
        _random = random;
        _logger = logger;
        _queue = new GroupReadQueue(_options.ReadsPerSecond, random, time.GetUtcNow());
        _meter = meters.Create("TrustedProxy.ObliviousRetrieval");
        _meter.CreateObservableGauge("trustedproxy.retrieval.waiting_groups", () => { lock (_gate) { return _queue.Count; } }, "{group}", "Retrieval groups waiting for a read slot");
        _reads = _meter.CreateCounter<long>("trustedproxy.retrieval.group_reads", "{group}", "Retrieval groups read from the backend (tag kind: wanted or cover)");
    }

    private bool ConstantRate => _options.Schedule == GroupReadQueue.ConstantRate;

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

        var groups = wanted.Where(b => b.GroupId is not null).GroupBy(b => b.GroupId!.Value).ToArray();
        lock (_random)
        {
            _random.Shuffle(groups);
        }

        if (ConstantRate)
        {
            var reads = groups.Select(g => Enqueue(g.Key, g.Select(b => b.Id))).ToList();
            foreach (var read in reads)
            {
                Merge(received, await read.WaitAsync(cancellationToken).ConfigureAwait(false));
            }
        }
        else if (groups.Length > 0)
        {
            // One shuffled plan across all the groups: the cloud cannot tell where one group ends.
            var members = await _blocks.GroupMembersAsync(groups.Select(g => g.Key).ToList()).ConfigureAwait(false);
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

    /// <summary>The constant-rate read loop; returns at once under the immediate schedule.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!ConstantRate)
        {
            return;
        }

        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                DateTimeOffset due;
                lock (_gate)
                {
                    due = _queue.NextSlotAt;
                }

                var now = _time.GetUtcNow();
                if (due > now)
                {
                    await Task.Delay(due - now, _time, cancellationToken).ConfigureAwait(false);
                }

                long? group;
                PendingGroup? pending = null;
                lock (_gate)
                {
                    group = _queue.TakeSlot(_time.GetUtcNow());
                    if (group is { } g && _pending.Remove(g, out var p))
                    {
                        pending = p;
                    }
                }

                await ReadSlotAsync(group, pending, cancellationToken).ConfigureAwait(false);
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
                }

                _pending.Clear();
            }
        }
    }

    public void Dispose() => _meter.Dispose();

    private Task<Dictionary<long, byte[]>> Enqueue(long group, IEnumerable<long> blockIds)
    {
        lock (_gate)
        {
            if (!_pending.TryGetValue(group, out var pending))
            {
                pending = new PendingGroup();
                _pending.Add(group, pending);
                _queue.Want(group);
            }

            pending.Wanted.UnionWith(blockIds);
            return pending.Done.Task;
        }
    }

    private async Task ReadSlotAsync(long? group, PendingGroup? pending, CancellationToken cancellationToken)
    {
        try
        {
            var (last, filled) = await _blocks.LastGroupAsync().ConfigureAwait(false);
            long? read = group;
            lock (_gate)
            {
                if (group is { } wanted)
                {
                    _queue.RecordWanted(wanted, last);
                }
                else if (filled > 0)
                {
                    read = _queue.CoverGroup(last);
                }
            }

            var members = read is { } g ? await _blocks.GroupMembersAsync([g]).ConfigureAwait(false) : [];
            var kept = await ReadMembersAsync(members, pending?.Wanted ?? [], cancellationToken).ConfigureAwait(false);
            _reads.Add(1, new KeyValuePair<string, object?>("kind", pending is null ? "cover" : "wanted"));
            pending?.Done.TrySetResult(kept);
        }
        catch (Exception ex) when (pending is not null && !cancellationToken.IsCancellationRequested)
        {
            pending.Done.TrySetException(ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A failed cover read harms nobody; the next slot comes as usual.
            LogCoverReadFailed(_logger, ex.GetType().Name);
        }
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
                // Every member is read whole: a read cut short would mark it as a decoy.
                await using var source = await _store.OpenReadAsync(member.ObjectName, cancellationToken).ConfigureAwait(false);
                using var copy = new MemoryStream();
                await source.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
                if (wanted.Contains(member.Id))
                {
                    var bytes = copy.ToArray();
                    if (member.Masked)
                    {
                        _mask.Apply(member.ObjectName, bytes);
                    }

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

    [LoggerMessage(EventId = 4201, Level = LogLevel.Warning, Message = "A cover read failed ({Error}); the schedule goes on")]
    private static partial void LogCoverReadFailed(ILogger logger, string error);

    private sealed class PendingGroup
    {
        public HashSet<long> Wanted { get; } = [];

        public TaskCompletionSource<Dictionary<long, byte[]>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
