using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Crypto;
using Microsoft.Data.Sqlite;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.FunctionalTests.Records;

public sealed class LifecycleTests
{
    [Fact]
    public async Task ALargeFile_StreamsThroughBitExact()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var file = new DicomFileBuilder().Patient("BIG1", "Large^File").PixelData(40 * 1024 * 1024, seed: 7).Build();

        var upload = await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file));
        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, back);

        Assert.Equal(file.Length, upload.Length);
        Assert.True(file.AsSpan().SequenceEqual(back.ToArray()));
    }

    [Fact]
    public async Task AfterARestart_RecordsAreStillThere_AndSearchable()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var upload = await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("RESTART1", "Doe^Jane").Study("1.2.3.4", "1.2.3.4.5", "20240105", "CT").Build()));

        await proxy.StopAsync();
        await proxy.StartAgainAsync();

        var found = await proxy.Client(ProxyRole.Consumer).SearchAsync(new TrustedProxy.Client.RecordSearch { PatientId = "RESTART1", From = new DateOnly(2024, 1, 1), To = new DateOnly(2024, 1, 31), Modality = "CT" });
        Assert.Equal(upload.Handle, Assert.Single(found.Items).Handle);
        Assert.DoesNotContain("RESTART1", found.Items[0].PatientPseudonym);
    }

    [Fact]
    public async Task ARecordLeftStagedByACrash_IsDeliveredAtTheNextStart()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var file = new DicomFileBuilder().Patient("CRASH1", "Doe^Jane").PixelData(100_000).Build();
        var upload = await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file));
        var name = Assert.Single(await proxy.CloudObjectsAsync()).Name;
        var ciphertext = await proxy.ReadCloudObjectAsync(name);

        // The cache file holds the ciphertext as it was before the object mask went on at the put.
        proxy.Services.GetRequiredService<ObjectMask>().Apply(name, ciphertext);
        await proxy.StopAsync();

        // The state a crash between staging and the backend put leaves: a staged row, its ciphertext on local disk, nothing in the cloud.
        File.WriteAllBytes(Path.Combine(proxy.Root, "data", "staging", upload.Handle + ".tpx"), ciphertext);
        File.Delete(Path.Combine(proxy.Root, "data", "cloud", name.ToString()));
        SetState(proxy, upload.Handle, RecordState.Staged);

        await proxy.StartAgainAsync();

        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, back);
        Assert.True(file.AsSpan().SequenceEqual(back.ToArray()));
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging")));
    }

    [Fact]
    public async Task AStagedRecordWhoseCiphertextWasLost_WasNeverAcknowledged_AndIsRemovedAtTheNextStart()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var upload = await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        await proxy.StopAsync();
        SetState(proxy, upload.Handle, RecordState.Staged);

        await proxy.StartAgainAsync();

        Assert.Empty(await proxy.CloudObjectsAsync());
        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxy.Client.TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).GetAsync(upload.Handle))).Status);
    }

    [Fact]
    public async Task ABackendThatRefusesWrites_Gets503_AndLeavesNothingBehind()
    {
        await using var proxy = await ProxyHost.StartAsync();
        // The backend's directory replaced by a file: every write fails, whoever the process runs as.
        var cloud = Path.Combine(proxy.Root, "data", "cloud");
        Directory.Delete(cloud);
        File.WriteAllText(cloud, "not a directory");
        try
        {
            var error = await Assert.ThrowsAsync<TrustedProxy.Client.TrustedProxyException>(() =>
                proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build())));

            Assert.Equal(503, error.Status);
            Assert.Equal("urn:trustedproxy:problem:backend-unavailable", error.ProblemType);
        }
        finally
        {
            File.Delete(cloud);
            Directory.CreateDirectory(cloud);
        }

        Assert.Empty(await proxy.CloudObjectsAsync());
        Assert.Equal(0, await ((RecordIndex)proxy.Services.GetService(typeof(RecordIndex))!).CountAsync());
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging")));
    }

    private static void SetState(ProxyHost proxy, string handle, RecordState state)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(proxy.Root, "data", "proxy.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE records SET state = $state WHERE handle = $handle";
        command.Parameters.AddWithValue("$state", state.ToString());
        command.Parameters.AddWithValue("$handle", handle);
        Assert.Equal(1, command.ExecuteNonQuery());

        // Before acknowledgement no block has been released.
        command.CommandText = "UPDATE blocks SET state = 'Cached', released_at = NULL WHERE handle = $handle";
        Assert.True(command.ExecuteNonQuery() >= 1);
    }
}
