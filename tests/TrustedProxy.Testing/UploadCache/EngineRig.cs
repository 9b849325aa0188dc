using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Crypto;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.UploadCache;

/// <summary>
/// The production upload-cache engine on virtual time: a real SQLite index, real cache files, a
/// real store (the filesystem one unless a test passes another), and a <see cref="FakeTimeProvider"/>
/// that <see cref="RunUntilAsync"/> moves from one event of the engine to the next, so a test
/// covers hours of schedule in milliseconds and never sleeps. Restart by disposing and opening
/// another rig on the same directory.
/// </summary>
internal sealed class EngineRig : IDisposable
{
    private readonly ServiceProvider _metrics;

    private EngineRig(string directory, UploadCacheOptions options, FakeTimeProvider time, Func<IObjectStore, IObjectStore>? wrap, int seed, ICoverPayloadSource? cover)
    {
        Directory = directory;
        Options = options;
        Time = time;
        Records = new RecordIndex(Path.Combine(directory, "proxy.db"));
        Blocks = new BlockIndex(Records);
        Staging = new StagingArea(Path.Combine(directory, "staging"));
        Cloud = new FileSystemObjectStore(Path.Combine(directory, "cloud"));
        Store = wrap is null ? Cloud : wrap(Cloud);
        Mask = new ObjectMask(SHA256.HashData("engine rig"u8));
        Padding = PaddingSchemes.Create(options);
        Logger = new FakeLogger<UploadCacheEngine>();
        _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        Engine = new UploadCacheEngine(
            Blocks, new BlockWriter(Store, Staging, Blocks, Mask), Store, Staging, Padding,
            Microsoft.Extensions.Options.Options.Create(options), Microsoft.Extensions.Options.Options.Create(new ObliviousRetrievalOptions()),
            time, new Random(seed), _metrics.GetRequiredService<IMeterFactory>(), Logger, cover);
    }

    public string Directory { get; }

    public UploadCacheOptions Options { get; }

    public FakeTimeProvider Time { get; }

    public RecordIndex Records { get; }

    public BlockIndex Blocks { get; }

    public StagingArea Staging { get; }

    /// <summary>The store as the cloud holds it (under any decorator a test put in front).</summary>
    public FileSystemObjectStore Cloud { get; }

    public IObjectStore Store { get; }

    public ObjectMask Mask { get; }

    public IPaddingScheme Padding { get; }

    public FakeLogger<UploadCacheEngine> Logger { get; }

    public UploadCacheEngine Engine { get; }

    /// <summary>A rig on <paramref name="directory"/>, recovered as the server recovers at start-up.</summary>
    public static async Task<EngineRig> OpenAsync(string directory, UploadCacheOptions options, FakeTimeProvider time, Func<IObjectStore, IObjectStore>? wrap = null, int seed = 1, ICoverPayloadSource? cover = null)
    {
        var rig = new EngineRig(directory, options, time, wrap, seed, cover);
        await rig.Engine.RecoverAsync(CancellationToken.None);
        return rig;
    }

    /// <summary>Acknowledges a record of <paramref name="blocks"/> random blocks as the uploader does (cache file, index rows), and admits it; returns its blocks.</summary>
    public async Task<IReadOnlyList<CacheBlock>> AdmitRecordAsync(int blocks, string? studyInstanceUid = null)
    {
        var handle = RecordHandle.New();
        var length = Padding.Layout(1).Length;
        await using (var staged = Staging.Create(handle))
        {
            await staged.WriteAsync(RandomNumberGenerator.GetBytes((int)(length * blocks)));
            Staging.Persist(staged);
        }

        var now = Time.GetUtcNow();
        var waiting = Enumerable.Range(0, blocks).Select(i => CacheBlock.Waiting(handle, i, length, now, Engine.DrawDeadline(now))).ToList();
        var ids = await Records.InsertAsync(
            new RecordEntry
            {
                Handle = handle,
                ObjectName = ObjectName.NewRandom(),
                WrappedKey = new byte[61],
                TransferSyntaxUid = "1.2.840.10008.1.2.1",
                PlaintextLength = length * blocks,
                StoredLength = length * blocks,
                ContentSha256 = new byte[32],
                OriginOrganisation = "Rig",
                StudyInstanceUid = studyInstanceUid,
                State = RecordState.Cached,
                CreatedAt = now,
            },
            waiting);
        var admitted = waiting.Select((b, i) => b with { Id = ids[i] }).ToList();
        Engine.Admit(admitted);
        return admitted;
    }

    /// <summary>Runs the release loop event by event until virtual time reaches <paramref name="end"/>.</summary>
    public async Task RunUntilAsync(DateTimeOffset end)
    {
        while (true)
        {
            var next = Engine.NextEventAt();
            if (next > end)
            {
                Time.SetUtcNow(end);
                return;
            }

            if (next > Time.GetUtcNow())
            {
                // Ask again at the new time: some events (a held block's admission) only lead to a later one.
                Time.SetUtcNow(next);
                continue;
            }

            // A step due now never waits on the clock; one that does would hang a virtual-time test.
            var step = Engine.StepAsync(CancellationToken.None);
            if (await Task.WhenAny(step, Task.Delay(TimeSpan.FromSeconds(30))) != step)
            {
                throw new TimeoutException($"the engine waited at {Time.GetUtcNow():O} for an event due at {next:O}; next event now {Engine.NextEventAt():O}");
            }

            await step;
        }
    }

    public Task RunForAsync(TimeSpan span) => RunUntilAsync(Time.GetUtcNow() + span);

    /// <summary>The names of the objects the cloud holds.</summary>
    public async Task<IReadOnlyList<ObjectName>> StoredAsync()
    {
        var names = new List<ObjectName>();
        await foreach (var item in Cloud.ListAsync(CancellationToken.None))
        {
            names.Add(item.Name);
        }

        return names;
    }

    public void Dispose()
    {
        Engine.Dispose();
        Mask.Dispose();
        _metrics.Dispose();
    }
}

/// <summary>
/// A store that refuses some puts for good, as a misbehaving or misconfigured cloud does (a test
/// double only for the refusal: every accepted put reaches the real store behind it).
/// </summary>
internal sealed class RefusingObjectStore(IObjectStore inner, Func<ObjectName, bool> refuse, int status = 403, string code = "AccessDenied") : IObjectStore
{
    private readonly List<ObjectName> _attempts = [];

    public string Name => inner.Name;

    /// <summary>Every put attempted, in order, refused or not.</summary>
    public IReadOnlyList<ObjectName> Attempts
    {
        get
        {
            lock (_attempts)
            {
                return _attempts.ToList();
            }
        }
    }

    public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        lock (_attempts)
        {
            _attempts.Add(name);
        }

        return refuse(name)
            ? throw new BackendRefusedException(inner.Name, status, code, new InvalidOperationException("refused by the test"))
            : inner.PutIfAbsentAsync(name, content, length, cancellationToken);
    }

    public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => inner.OpenReadAsync(name, cancellationToken);

    public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

    public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
}
