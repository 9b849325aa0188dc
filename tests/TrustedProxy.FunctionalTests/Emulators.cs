using TrustedProxy.Testing.Storage;

namespace TrustedProxy.FunctionalTests;

/// <summary>One Azurite process shared by the tests of the "azurite" collection.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public EmulatorProcess Emulator { get; private set; } = null!;

    public async Task InitializeAsync() => Emulator = await EmulatorProcess.StartAzuriteAsync();

    public async Task DisposeAsync() => await Emulator.DisposeAsync();
}

/// <summary>
/// One s3rver process shared by the tests of the "s3rver" collection, reachable only through a
/// front that checks every request as AWS does (payload hash, Content-MD5, checksums,
/// If-None-Match) and records it: s3rver alone checks none of these.
/// </summary>
public sealed class S3rverFixture : IAsyncLifetime
{
    public VerifyingS3Front Front { get; private set; } = null!;

    /// <summary>Backend settings for a fresh bucket behind the front.</summary>
    public BackendSettings Backend(string? bucket = null) => Front.Settings(bucket);

    public async Task InitializeAsync() => Front = await VerifyingS3Front.StartAsync();

    /// <summary>For a test that must leave no refused request behind: forget what came before it.</summary>
    public void BeginCleanTest() => Front.Clear();

    /// <summary>
    /// The cloud refused nothing the test sent (no payload-hash mismatch, bad digest, denial), was
    /// always reachable, and saw no header carrying the proxy's own request context.
    /// </summary>
    public void AssertNothingRefused()
    {
        var requests = Front.Requests;
        Assert.NotEmpty(requests);
        Assert.DoesNotContain(requests, r => r.IsRefusal || r.Status == 0);
        string[] context = ["traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context"];
        Assert.DoesNotContain(requests, r => context.Any(h => r.Header(h) is not null));
    }

    public async Task DisposeAsync() => await Front.DisposeAsync();
}

[CollectionDefinition("azurite")]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>;

[CollectionDefinition("s3rver")]
public sealed class S3rverCollection : ICollectionFixture<S3rverFixture>;
