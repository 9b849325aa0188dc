using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using TrustedProxy.Storage;
using TrustedProxy.Storage.AzureBlob;
using TrustedProxy.Storage.S3;

namespace TrustedProxy.FunctionalTests.Storage;

/// <summary>What every backend must do, run against each real implementation.</summary>
public abstract class StorageContractTests : IAsyncLifetime
{
    private readonly TemporaryDirectory _directory = new();

    protected IObjectStore Store { get; private set; } = null!;

    protected abstract IObjectStoreProvider Provider { get; }

    protected abstract IReadOnlyDictionary<string, string?> Settings { get; }

    /// <summary>Whether a delete of a missing object reports false (S3's DeleteObject answers alike either way).</summary>
    protected virtual bool DeleteReportsMissing => true;

    public async Task InitializeAsync()
    {
        var section = new ConfigurationBuilder().AddInMemoryCollection(Settings).Build().GetSection("backend");
        Store = await Provider.CreateAsync(section, _directory.Path, CancellationToken.None);
        OnStart();
    }

    public Task DisposeAsync()
    {
        _directory.Dispose();
        OnEnd();
        return Task.CompletedTask;
    }

    /// <summary>After the store is made, before the test.</summary>
    protected virtual void OnStart()
    {
    }

    /// <summary>After the test: checks that hold whatever it did.</summary>
    protected virtual void OnEnd()
    {
    }

    [Fact]
    public async Task APutObject_ReadsBackBitExact_AndIsListedWithItsSize()
    {
        var name = ObjectName.NewRandom();
        var content = RandomNumberGenerator.GetBytes(300_001);

        Assert.Equal(PutResult.Created, await Put(name, content));

        Assert.Equal(content, await Get(name));
        Assert.True(await Store.ExistsAsync(name, CancellationToken.None));
        var listed = new List<StoredObject>();
        await foreach (var item in Store.ListAsync(CancellationToken.None))
        {
            listed.Add(item);
        }

        Assert.Contains(new StoredObject(name, content.Length), listed);
    }

    [Fact]
    public async Task PutIfAbsent_NeverOverwrites()
    {
        var name = ObjectName.NewRandom();
        await Put(name, [1, 2, 3]);

        Assert.Equal(PutResult.AlreadyExists, await Put(name, [9, 9, 9, 9]));
        Assert.Equal(new byte[] { 1, 2, 3 }, await Get(name));
    }

    [Fact]
    public async Task AnEmptyObject_IsAnObject()
    {
        var name = ObjectName.NewRandom();

        await Put(name, []);

        Assert.Empty(await Get(name));
    }

    [Fact]
    public async Task ReadingAMissingObject_SaysSo()
    {
        var name = ObjectName.NewRandom();

        var error = await Assert.ThrowsAsync<StoredObjectNotFoundException>(() => Store.OpenReadAsync(name, CancellationToken.None));
        Assert.Equal(name, error.ObjectName);
        Assert.False(await Store.ExistsAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task Delete_RemovesOnce()
    {
        var name = ObjectName.NewRandom();
        await Put(name, [1]);

        Assert.True(await Store.DeleteAsync(name, CancellationToken.None));
        Assert.False(await Store.ExistsAsync(name, CancellationToken.None));

        // Deleting again is no error; whether the backend could say it was already gone differs.
        Assert.Equal(!DeleteReportsMissing, await Store.DeleteAsync(name, CancellationToken.None));
        Assert.False(await Store.ExistsAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task ConcurrentPutsOfOneName_LeaveOneIntactObject()
    {
        var name = ObjectName.NewRandom();
        var contents = Enumerable.Range(0, 6).Select(i => Enumerable.Repeat((byte)i, 10_000).ToArray()).ToList();

        var results = await Task.WhenAll(contents.Select(c => Put(name, c)));

        Assert.Contains(PutResult.Created, results);

        // s3rver acknowledges a losing concurrent put before its file write settles; a read in
        // that instant fails its checksum (never returns mixed bytes). Give the emulator a moment.
        byte[] stored;
        try
        {
            stored = await Get(name);
        }
        catch (Exception ex) when (ex.Message.Contains("hash", StringComparison.OrdinalIgnoreCase))
        {
            await Task.Delay(500);
            stored = await Get(name);
        }

        Assert.Contains(contents, c => c.SequenceEqual(stored));
    }

    private async Task<PutResult> Put(ObjectName name, byte[] content)
    {
        using var stream = new MemoryStream(content);
        return await Store.PutIfAbsentAsync(name, stream, content.Length, CancellationToken.None);
    }

    private async Task<byte[]> Get(ObjectName name)
    {
        await using var stream = await Store.OpenReadAsync(name, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }
}

public sealed class FileSystemStoreContractTests : StorageContractTests
{
    protected override IObjectStoreProvider Provider => new FileSystemObjectStoreProvider();

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["backend:Root"] = "cloud" };
}

[Collection("azurite")]
public sealed class AzureBlobStoreContractTests(AzuriteFixture azurite) : StorageContractTests
{
    protected override IObjectStoreProvider Provider => new AzureBlobObjectStoreProvider();

    protected override IReadOnlyDictionary<string, string?> Settings =>
        BackendSettings.Azurite(azurite.Emulator).Settings.ToDictionary(p => p.Key.Replace("TrustedProxy:Storage:azure-blob", "backend"), p => p.Value);
}

[Collection("s3rver")]
public sealed class S3StoreContractTests(S3rverFixture s3rver) : StorageContractTests
{
    protected override IObjectStoreProvider Provider => new S3ObjectStoreProvider();

    protected override bool DeleteReportsMissing => false;

    /// <summary>Whatever the contract test did, the cloud refused none of it (no bad digest, no payload-hash mismatch).</summary>
    protected override void OnStart() => s3rver.BeginCleanTest();

    protected override void OnEnd()
    {
        s3rver.AssertNothingRefused();
        var requests = s3rver.Front.Requests;

        // Every write was one conditional PUT, with no HEAD of its key just before it.
        var objectRequests = requests.Where(r => r.Key.Length > 0).ToList();
        Assert.All(objectRequests.Where(r => r.Method == "PUT"), r => Assert.Equal("*", r.Header("If-None-Match")));
        for (var i = 1; i < objectRequests.Count; i++)
        {
            var (before, put) = (objectRequests[i - 1], objectRequests[i]);
            Assert.False(put.Method == "PUT" && before.Method == "HEAD" && before.Key == put.Key, $"a HEAD preceded {put}");
        }
    }

    protected override IReadOnlyDictionary<string, string?> Settings =>
        s3rver.Backend().Settings.ToDictionary(p => p.Key.Replace("TrustedProxy:Storage:s3", "backend"), p => p.Value);
}
