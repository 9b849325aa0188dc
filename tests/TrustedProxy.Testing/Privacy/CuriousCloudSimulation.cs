using System.Runtime.CompilerServices;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy;

/// <summary>What the proxy knows about one object it wrote: which record, study, patient and hospital, and when the record arrived.</summary>
public sealed record ObjectTruth(long RecordId, int Block, int StudyId, int PatientId, int HospitalId, DateTimeOffset ArrivedAt, DateTimeOffset WrittenAt);

/// <summary>
/// A simulated cloud log and the ground truth kept beside it. The log is what the cloud saw; the
/// truth is for scoring attacks only. An object not in <see cref="Objects"/> is a dummy.
/// </summary>
public sealed class SimulatedLog(HospitalWorkload workload, UploadCacheOptions options, IReadOnlyList<CloudObservation> observations, IReadOnlyDictionary<string, ObjectTruth> objects, DateTimeOffset end)
{
    public HospitalWorkload Workload => workload;

    public UploadCacheOptions Options => options;

    /// <summary>Everything the cloud observed, in order.</summary>
    public IReadOnlyList<CloudObservation> Observations => observations;

    /// <summary>The real objects by name.</summary>
    public IReadOnlyDictionary<string, ObjectTruth> Objects => objects;

    public DateTimeOffset Start => workload.Start;

    /// <summary>When the last block left the cache.</summary>
    public DateTimeOffset End => end;
}

/// <summary>
/// Replays a workload through a real release schedule and a real <see cref="ObservedObjectStore"/>
/// in virtual time: each record is laid out by the padding scheme, its blocks are admitted at its
/// arrival, and the clock advances to the next arrival or the schedule's next event, whichever
/// comes first. Cache off is write-through: every block is written at its arrival, in order.
/// The run ends when the last real block has been written.
/// </summary>
public static class CuriousCloudSimulation
{
    public static async Task<SimulatedLog> RunAsync(HospitalWorkload workload, UploadCacheOptions options, int seed, CancellationToken cancellationToken = default)
    {
        var clock = new VirtualTimeProvider(workload.Start);
        var sink = new InMemoryObservationSink();
        var store = new ObservedObjectStore(new DiscardingObjectStore(), sink, clock);
        var padding = PaddingSchemes.Create(options);
        // The schedule and the simulation draw from separate streams, so that one configuration's
        // dummy draws do not line its slot times up with another's.
        var scheduleRandom = new Random(seed);
        var random = new Random(unchecked((seed * 7919) + 104_729));
        var objects = new Dictionary<string, ObjectTruth>();
        var records = workload.Records;

        // Block ids are the schedule's handle; the simulation maps them back to their record.
        var blockRecord = new List<(int Record, int Block, long Length)>();
        var realLengths = new List<long>();

        async Task WriteAsync(long? blockId)
        {
            var name = ObjectName.NewRandom();
            long length;
            if (blockId is { } id)
            {
                var (recordIndex, block, blockLength) = blockRecord[(int)id];
                var record = records[recordIndex];
                length = blockLength;
                objects.Add(name.ToString(), new ObjectTruth(record.Id, block, record.StudyId, record.PatientId, record.HospitalId, record.ArrivedAt, clock.GetUtcNow()));
            }
            else
            {
                length = padding.DummyLength(realLengths.Count == 0 ? null : realLengths[random.Next(realLengths.Count)]);
            }

            await store.PutIfAbsentAsync(name, Stream.Null, length, cancellationToken).ConfigureAwait(false);
        }

        int Lay(int recordIndex)
        {
            var layout = padding.Layout(records[recordIndex].CiphertextLength);
            for (var b = 0; b < layout.Count; b++)
            {
                blockRecord.Add((recordIndex, b, layout.Length));
            }

            realLengths.Add(layout.Length);
            return layout.Count;
        }

        if (!options.Enabled)
        {
            for (var r = 0; r < records.Count; r++)
            {
                clock.MoveTo(records[r].ArrivedAt);
                var first = blockRecord.Count;
                var count = Lay(r);
                for (var b = 0; b < count; b++)
                {
                    await WriteAsync(first + b).ConfigureAwait(false);
                }
            }

            return new SimulatedLog(workload, options, sink.Snapshot(), objects, clock.GetUtcNow());
        }

        var schedule = ReleaseSchedules.Create(options, scheduleRandom, workload.Start);
        var next = 0;
        var stalls = 0;
        while (next < records.Count || schedule.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var now = clock.GetUtcNow();
            var eventAt = schedule.NextEventAt(now);
            if (next < records.Count && records[next].ArrivedAt <= eventAt)
            {
                clock.MoveTo(records[next].ArrivedAt);
                var first = blockRecord.Count;
                var count = Lay(next);
                for (var b = 0; b < count; b++)
                {
                    schedule.Admit(first + b, records[next].ArrivedAt);
                }

                next++;
                continue;
            }

            if (eventAt == DateTimeOffset.MaxValue)
            {
                throw new InvalidOperationException($"the {schedule.Name} schedule holds {schedule.Count} blocks and has nothing planned");
            }

            clock.MoveTo(eventAt < now ? now : eventAt);
            var releases = schedule.Take(clock.GetUtcNow());
            stalls = releases.Count == 0 ? stalls + 1 : 0;
            if (stalls > 1000)
            {
                throw new InvalidOperationException($"the {schedule.Name} schedule keeps announcing events at {eventAt:O} and releasing nothing");
            }

            foreach (var release in releases)
            {
                await WriteAsync(release.Block?.Id).ConfigureAwait(false);
            }
        }

        return new SimulatedLog(workload, options, sink.Snapshot(), objects, clock.GetUtcNow());
    }
}

/// <summary>A backend that accepts every write and keeps nothing: the simulation needs only what the decorator records.</summary>
public sealed class DiscardingObjectStore : IObjectStore
{
    private static readonly Task<PutResult> Created = Task.FromResult(PutResult.Created);

    public string Name => "discard";

    public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) => Created;

    public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => throw new StoredObjectNotFoundException(name);

    public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => Task.FromResult(false);

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => Task.FromResult(false);

    public async IAsyncEnumerable<StoredObject> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        yield break;
    }
}
