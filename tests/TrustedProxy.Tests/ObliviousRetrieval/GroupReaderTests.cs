using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.Testing;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.ObliviousRetrieval;

/// <summary>The read loop's start and stop: what it says reading costs, and the learned model it keeps.</summary>
public sealed class GroupReaderTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    [Fact]
    public async Task AtStart_TheLoopStatesTheDailyReadCostOfTheDeclaredLoad_AndOnStoppingKeepsItsModelOwnerOnly()
    {
        using var rig = await EngineRig.OpenAsync(_directory.Path, new UploadCacheOptions(), _time);
        var file = Path.Combine(_directory.Path, "retrieval", "cover-model.json");
        var logger = new FakeLogger<GroupReader>();
        var options = new ObliviousRetrievalOptions { DeclaredRetrievalsPerDay = 100, CoverModelFile = file };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(1), _metrics.GetRequiredService<IMeterFactory>(), logger);
        using var stop = new CancellationTokenSource();

        var loop = reader.RunAsync(stop.Token);
        await stop.CancelAsync();
        await loop;

        // 100 streams a day of the declared 500 MB, padded to its class (3,815 blocks of 128 KiB: 4,096).
        var said = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 4204);
        Assert.Contains("cover now 100 streams a day of about 537 MB, 53.7 GB a day read when nobody asks (floor 5 GB)", said.Message);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var state = JsonSerializer.Deserialize<CoverModelState>(File.ReadAllText(file))!;
        Assert.NotEmpty(state.Snapshot);

        // The next start reads it back: the same cost, whatever the options now declare.
        var again = new FakeLogger<GroupReader>();
        using var restarted = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options with { DeclaredRetrievalsPerDay = 1 }), Options.Create(rig.Options), _time, new Random(2), _metrics.GetRequiredService<IMeterFactory>(), again);
        Assert.Equal(reader.DailyCost(), restarted.DailyCost());
    }

    [Fact]
    public async Task ReadAheadForASlowRetrieval_StaysWithinItsMemoryBudget_WaitsOnDiskEncrypted_AndComesBackWhole()
    {
        var uploads = new UploadCacheOptions { BlockSizeBytes = 4096, SlotsPerSecond = 10, PoolThreshold = 4, MinHoldSeconds = 0, MeanHoldSeconds = 1, MaxHoldSeconds = 2, AlarmAfterSeconds = 3600 };
        using var rig = await EngineRig.OpenAsync(_directory.Path, uploads, _time);
        var contents = new Dictionary<string, byte[]>();
        for (var i = 0; i < 6; i++)
        {
            var blocks = await rig.AdmitRecordAsync(8);
            contents[blocks[0].Handle!] = await File.ReadAllBytesAsync(rig.Staging.PathOf(blocks[0].Handle!));
        }

        await rig.RunForAsync(TimeSpan.FromSeconds(20));
        var entries = new List<RecordEntry>();
        foreach (var handle in contents.Keys)
        {
            entries.Add((await rig.Records.FindAsync(handle))!);
        }

        Assert.All(entries, e => Assert.Equal(RecordState.Stored, e.State));
        var spill = Path.Combine(_directory.Path, "scratch");
        var budget = 5 * 4096;
        var options = new ObliviousRetrievalOptions
        {
            GroupsPerEpoch = 4, MinStreamGroups = 1, ReadAheadMemoryBytes = budget, ReadAheadDirectory = spill,

            // No cover: the loop below runs until the retrieval's own stream has been read.
            DeclaredRetrievalsPerDay = 1e-9, IdleFloorGigabytesPerDay = 0,
        };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(3), _metrics.GetRequiredService<IMeterFactory>(), new FakeLogger<GroupReader>());

        // The retrieval announces 48 blocks and takes none while the stream runs (a client that does not read).
        using (await reader.PrefetchAsync(entries, [], CancellationToken.None))
        {
            var peak = 0L;
            while (reader.Streams > 0)
            {
                _time.SetUtcNow(reader.NextEpochAt);
                await reader.ReadEpochAsync(CancellationToken.None);
                peak = Math.Max(peak, reader.ReadAheadInMemoryBytes);
            }

            Assert.InRange(peak, 1, budget);
            var files = Directory.GetFiles(spill);
            Assert.NotEmpty(files);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(files[0]));

            Assert.True(new FileInfo(files[0]).Length >= 40 * 4096, $"{new FileInfo(files[0]).Length} bytes on disk");

            foreach (var entry in entries)
            {
                using var copy = new MemoryStream();
                await reader.ReadAsync(entry, copy, CancellationToken.None);
                Assert.Equal(contents[entry.Handle], copy.ToArray());
            }

            Assert.Equal(0, reader.ReadAheadInMemoryBytes);
        }

        // Every block taken: the read-ahead file is closed, and so deleted.
        Assert.Equal(0, reader.ReadAheadFiles);
        Assert.Empty(Directory.GetFiles(spill));
    }

    [Fact]
    public async Task ARetrievalWhoseReaderWaitsForEachRecord_LetsGoOfEveryBlockItTook()
    {
        var uploads = new UploadCacheOptions { BlockSizeBytes = 4096, SlotsPerSecond = 10, PoolThreshold = 4, MinHoldSeconds = 0, MeanHoldSeconds = 1, MaxHoldSeconds = 2, AlarmAfterSeconds = 3600 };
        using var rig = await EngineRig.OpenAsync(_directory.Path, uploads, _time);
        var contents = new Dictionary<string, byte[]>();
        for (var i = 0; i < 6; i++)
        {
            var blocks = await rig.AdmitRecordAsync(8);
            contents[blocks[0].Handle!] = await File.ReadAllBytesAsync(rig.Staging.PathOf(blocks[0].Handle!));
        }

        await rig.RunForAsync(TimeSpan.FromSeconds(20));
        var entries = new List<RecordEntry>();
        foreach (var handle in contents.Keys)
        {
            entries.Add((await rig.Records.FindAsync(handle))!);
        }

        var options = new ObliviousRetrievalOptions { GroupsPerEpoch = 4, MinStreamGroups = 1, DeclaredRetrievalsPerDay = 1e-9, IdleFloorGigabytesPerDay = 0 };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(3), _metrics.GetRequiredService<IMeterFactory>(), new FakeLogger<GroupReader>());

        // As WADO-RS does: announce the study, then read record after record, each read waiting for
        // its blocks while the epochs go on; the reader is ahead of the stream, so it waits on every block.
        using (await reader.PrefetchAsync(entries, [], CancellationToken.None))
        {
            foreach (var entry in entries)
            {
                using var copy = new MemoryStream();
                var read = reader.ReadAsync(entry, copy, CancellationToken.None);
                while (!read.IsCompleted)
                {
                    _time.SetUtcNow(reader.NextEpochAt);
                    await reader.ReadEpochAsync(CancellationToken.None);
                    await Task.WhenAny(read, Task.Delay(10));
                }

                await read;
                Assert.Equal(contents[entry.Handle], copy.ToArray());

                // At most what the last epoch read ahead of this record.
                Assert.InRange(reader.ReadAheadInMemoryBytes, 0, options.GroupsPerEpoch * 4096);
            }

            Assert.Equal(0, reader.ReadAheadInMemoryBytes);
        }
    }

    /// <summary>
    /// A second request for a record another request's stream is already reading is served by that
    /// stream, but it still starts one of its own, shaped as cover: otherwise an insider who knows when
    /// it was made would see that nothing followed it, so that it asked for something already in
    /// flight, such as the same record as the request just before.
    /// </summary>
    [Theory]
    [InlineData(true, 2)]
    [InlineData(false, 1)]
    public async Task ARequestForGroupsAlreadyInFlight_StillStartsAStreamOfItsClass(bool streamForLocalReads, int streams)
    {
        var counting = (CountingReads?)null;
        var uploads = new UploadCacheOptions { BlockSizeBytes = 4096, SlotsPerSecond = 10, PoolThreshold = 4, MinHoldSeconds = 0, MeanHoldSeconds = 1, MaxHoldSeconds = 2, AlarmAfterSeconds = 3600 };
        using var rig = await EngineRig.OpenAsync(_directory.Path, uploads, _time, wrap: s => counting = new CountingReads(s));
        var handles = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            handles.Add((await rig.AdmitRecordAsync(1))[0].Handle!);
        }

        await rig.RunForAsync(TimeSpan.FromSeconds(20));
        var entry = (await rig.Records.FindAsync(handles[7]))!;
        var options = new ObliviousRetrievalOptions { GroupsPerEpoch = 4, MinStreamGroups = 1, StreamFloorMegabytes = 0, DeclaredRetrievalsPerDay = 1e-9, IdleFloorGigabytesPerDay = 0, StreamForLocalReads = streamForLocalReads };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(3), _metrics.GetRequiredService<IMeterFactory>(), new FakeLogger<GroupReader>());
        var before = counting!.Reads;

        using var first = new MemoryStream();
        using var second = new MemoryStream();
        var reads = new[] { reader.ReadAsync(entry, first, CancellationToken.None), reader.ReadAsync(entry, second, CancellationToken.None) };
        for (var epoch = 0; epoch < 8; epoch++)
        {
            _time.SetUtcNow(reader.NextEpochAt);
            await reader.ReadEpochAsync(CancellationToken.None);
        }

        await Task.WhenAll(reads);
        Assert.Equal(first.ToArray(), second.ToArray());

        // One group a stream (the smallest class is 1): the first request's, and the second's own.
        Assert.Equal(streams, counting.Reads - before);
    }

    /// <summary>
    /// A request's padding lies next to its record but leaves out the other records of its study:
    /// a study's records are written close together, and a later request for the whole study would
    /// otherwise read as wanted what this one read as padding (overlap linking the two).
    /// </summary>
    [Fact]
    public async Task ARequestsPadding_LeavesOutTheOtherRecordsOfItsStudy()
    {
        var counting = (CountingReads?)null;
        var uploads = new UploadCacheOptions { BlockSizeBytes = 4096, SlotsPerSecond = 10, PoolThreshold = 4, MinHoldSeconds = 0, MeanHoldSeconds = 1, MaxHoldSeconds = 2, AlarmAfterSeconds = 3600 };
        using var rig = await EngineRig.OpenAsync(_directory.Path, uploads, _time, wrap: s => counting = new CountingReads(s));
        var study = new List<string>();
        for (var i = 0; i < 60; i++)
        {
            // Every other record belongs to the study, so its records sit among the request's neighbours.
            study.AddRange(i % 2 == 0 ? [(await rig.AdmitRecordAsync(1, "1.2.3.4"))[0].Handle!] : []);
            if (i % 2 == 1)
            {
                await rig.AdmitRecordAsync(1, "9.9.9." + i);
            }
        }

        // Ten seconds of ten slots: the sixty records among about forty dummies.
        await rig.RunForAsync(TimeSpan.FromSeconds(10));
        var entry = (await rig.Records.FindAsync(study[15]))!;
        Assert.All(await rig.Blocks.OfRecordAsync(entry.Handle), b => Assert.Equal(BlockState.Released, b.State));
        var others = new HashSet<string>();
        foreach (var handle in study.Where(h => h != entry.Handle))
        {
            others.UnionWith((await rig.Blocks.OfRecordAsync(handle)).Select(b => b.ObjectName.ToString()));
        }

        var options = new ObliviousRetrievalOptions { GroupsPerEpoch = 64, MinStreamGroups = 32, StreamFloorMegabytes = 0, DeclaredRetrievalsPerDay = 1e-9, IdleFloorGigabytesPerDay = 0 };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(5), _metrics.GetRequiredService<IMeterFactory>(), new FakeLogger<GroupReader>());
        counting!.Names.Clear();

        using var copy = new MemoryStream();
        var read = reader.ReadAsync(entry, copy, CancellationToken.None);
        for (var epoch = 0; epoch < 3; epoch++)
        {
            _time.SetUtcNow(reader.NextEpochAt);
            await reader.ReadEpochAsync(CancellationToken.None);
        }

        await read;
        Assert.Equal(32, counting.Names.Count);
        Assert.DoesNotContain(counting.Names, others.Contains);
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _directory.Dispose();
    }
}

/// <summary>Counts the objects read from the store beneath.</summary>
internal sealed class CountingReads(IObjectStore inner) : IObjectStore
{
    private int _reads;

    public int Reads => Volatile.Read(ref _reads);

    /// <summary>The names read, in order (the test reads them once the reads are done).</summary>
    public List<string> Names { get; } = [];

    public string Name => inner.Name;

    public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) => inner.PutIfAbsentAsync(name, content, length, cancellationToken);

    public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _reads);
        lock (Names)
        {
            Names.Add(name.ToString());
        }

        return inner.OpenReadAsync(name, cancellationToken);
    }

    public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

    public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
}
