using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using TrustedProxy.Storage;

namespace TrustedProxy.PrivacyTests.Storage;

public sealed class ObservedObjectStoreTests
{
    private readonly VirtualTimeProvider _clock = new(HospitalWorkload.Epoch);
    private readonly MemoryObjectStore _backend = new();
    private readonly InMemoryObservationSink _sink = new();
    private readonly ObservedObjectStore _store;

    public ObservedObjectStoreTests() => _store = new ObservedObjectStore(_backend, _sink, _clock);

    [Fact]
    public async Task EveryOperation_IsRecordedWithTimeNameAndSize_AndPassesThroughUnchanged()
    {
        var a = ObjectName.NewRandom();
        var b = ObjectName.NewRandom();
        var missing = ObjectName.NewRandom();
        byte[] content = [1, 2, 3, 4, 5];

        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync(a, new MemoryStream(content), content.Length, default));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(PutResult.AlreadyExists, await _store.PutIfAbsentAsync(a, new MemoryStream(content), content.Length, default));
        _clock.Advance(TimeSpan.FromSeconds(1));
        await _store.PutIfAbsentAsync(b, new MemoryStream(new byte[7]), 7, default);
        _clock.Advance(TimeSpan.FromSeconds(1));
        await using (var read = await _store.OpenReadAsync(a, default))
        {
            var copy = new MemoryStream();
            await read.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
        }

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(await _store.ExistsAsync(missing, default));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await _store.DeleteAsync(b, default));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([a], await _store.ListAsync(default).Select(o => o.Name).ToListAsync());

        var t = HospitalWorkload.Epoch;
        Assert.Equal(
            [
                new CloudObservation(t, "put", a.ToString(), 5),
                new CloudObservation(t.AddSeconds(1), "put", a.ToString(), 5),
                new CloudObservation(t.AddSeconds(2), "put", b.ToString(), 7),
                new CloudObservation(t.AddSeconds(3), "get", a.ToString(), 5),
                new CloudObservation(t.AddSeconds(4), "exists", missing.ToString(), 0),
                new CloudObservation(t.AddSeconds(5), "delete", b.ToString(), 0),
                new CloudObservation(t.AddSeconds(6), "list", string.Empty, 0),
            ],
            _sink.Snapshot());
    }

    [Fact]
    public async Task AFailedOperation_IsNotRecorded()
    {
        await Assert.ThrowsAsync<StoredObjectNotFoundException>(() => _store.OpenReadAsync(ObjectName.NewRandom(), default));
        _backend.Down = true;
        await Assert.ThrowsAsync<BackendUnavailableException>(() => _store.PutIfAbsentAsync(ObjectName.NewRandom(), new MemoryStream([1]), 1, default));

        Assert.Empty(_sink.Snapshot());
    }

    [Fact]
    public async Task ACsvLog_ReadsBackAsTheSameObservations()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.File("observations.csv");
        using (var csv = new CsvObservationSink(path))
        {
            var store = new ObservedObjectStore(_backend, csv, _clock);
            for (var i = 0; i < 5; i++)
            {
                _clock.Advance(TimeSpan.FromTicks(1_234_567));
                await store.PutIfAbsentAsync(ObjectName.NewRandom(), new MemoryStream(new byte[i]), i, default);
                await new ObservedObjectStore(_backend, _sink, _clock).ExistsAsync(ObjectName.NewRandom(), default);
            }
        }

        var read = CsvObservationSink.Read(path);
        Assert.Equal(5, read.Count);
        Assert.Equal(_backend.Names.Order(), read.Select(o => o.Name).Order());
        Assert.Equal(_sink.Snapshot().Select(o => o.At), read.Select(o => o.At));
    }

    /// <summary>A backend in memory that can be switched off.</summary>
    private sealed class MemoryObjectStore : IObjectStore
    {
        private readonly ConcurrentDictionary<ObjectName, byte[]> _objects = new();

        public bool Down { get; set; }

        public IEnumerable<string> Names => _objects.Keys.Select(k => k.ToString());

        public string Name => "memory";

        public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
        {
            ThrowIfDown();
            var copy = new MemoryStream();
            content.CopyTo(copy);
            return Task.FromResult(_objects.TryAdd(name, copy.ToArray()) ? PutResult.Created : PutResult.AlreadyExists);
        }

        public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
        {
            ThrowIfDown();
            return _objects.TryGetValue(name, out var bytes)
                ? Task.FromResult<Stream>(new MemoryStream(bytes, writable: false))
                : throw new StoredObjectNotFoundException(name);
        }

        public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
        {
            ThrowIfDown();
            return Task.FromResult(_objects.TryRemove(name, out _));
        }

        public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken)
        {
            ThrowIfDown();
            return Task.FromResult(_objects.ContainsKey(name));
        }

        public async IAsyncEnumerable<StoredObject> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            ThrowIfDown();
            foreach (var (name, bytes) in _objects)
            {
                await Task.Yield();
                yield return new StoredObject(name, bytes.Length);
            }
        }

        private void ThrowIfDown()
        {
            if (Down)
            {
                throw new BackendUnavailableException(Name, new IOException("switched off"));
            }
        }
    }
}
