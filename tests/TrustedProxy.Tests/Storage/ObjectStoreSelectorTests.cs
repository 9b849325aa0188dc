using Microsoft.Extensions.Configuration;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Storage;

public sealed class ObjectStoreSelectorTests
{
    [Fact]
    public async Task TheConfiguredBackend_IsChosenByName()
    {
        using var directory = new TemporaryDirectory();
        var selector = new ObjectStoreSelector([new FileSystemObjectStoreProvider()]);

        var store = await selector.CreateAsync(Section(("Backend", "FileSystem"), ("filesystem:Root", "cloud")), directory.Path, CancellationToken.None);

        Assert.Equal("filesystem", store.Name);
        Assert.True(Directory.Exists(Path.Combine(directory.Path, "cloud")));
    }

    [Fact]
    public async Task AnUnknownBackend_FailsNamingItAndTheChoices()
    {
        var selector = new ObjectStoreSelector([new FileSystemObjectStoreProvider()]);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => selector.CreateAsync(Section(("Backend", "dropbox")), ".", CancellationToken.None));

        Assert.Contains("dropbox", error.Message);
        Assert.Contains("filesystem", error.Message);
    }

    [Fact]
    public void TwoBackendsUnderOneName_FailAtStartUp()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new ObjectStoreSelector([new FileSystemObjectStoreProvider(), new FileSystemObjectStoreProvider()]));

        Assert.Contains("filesystem", error.Message);
    }

    private static IConfigurationSection Section(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>("Storage:" + v.Key, v.Value))).Build().GetSection("Storage");
}
