namespace TrustedProxy.FunctionalTests;

/// <summary>One Azurite process shared by the tests of the "azurite" collection.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public EmulatorProcess Emulator { get; private set; } = null!;

    public async Task InitializeAsync() => Emulator = await EmulatorProcess.StartAzuriteAsync();

    public async Task DisposeAsync() => await Emulator.DisposeAsync();
}

/// <summary>One s3rver process shared by the tests of the "s3rver" collection.</summary>
public sealed class S3rverFixture : IAsyncLifetime
{
    public EmulatorProcess Emulator { get; private set; } = null!;

    public async Task InitializeAsync() => Emulator = await EmulatorProcess.StartS3rverAsync();

    public async Task DisposeAsync() => await Emulator.DisposeAsync();
}

[CollectionDefinition("azurite")]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>;

[CollectionDefinition("s3rver")]
public sealed class S3rverCollection : ICollectionFixture<S3rverFixture>;
