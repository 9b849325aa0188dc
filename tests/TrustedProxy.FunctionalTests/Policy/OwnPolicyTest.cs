using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>
/// A test class whose proxy reads a copy of the shipped policy directory, which the test may edit:
/// <see cref="AddPolicyAsync"/> writes a file and puts it in force at once (the watcher would too,
/// after its debounce; the hot-reload tests wait for that path).
/// </summary>
public abstract class OwnPolicyTest : IAsyncLifetime
{
    private readonly TemporaryDirectory _policies = new();

    protected ProxyHost Proxy { get; private set; } = null!;

    protected string PolicyDirectory => _policies.Path;

    internal PolicyStore Store => Proxy.Services.GetRequiredService<PolicyStore>();

    internal DecisionLog Decisions => Proxy.Services.GetRequiredService<DecisionLog>();

    /// <summary>Settings of a test class's own, besides its policy directory.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();

    public async Task InitializeAsync()
    {
        foreach (var file in Directory.GetFiles(Repository.Path("config", "policies"), "*.yaml"))
        {
            File.Copy(file, Path.Combine(PolicyDirectory, Path.GetFileName(file)));
        }

        var settings = new Dictionary<string, string?>(Settings)
        {
            ["TrustedProxy:Policy:Directory"] = PolicyDirectory,
            ["TrustedProxy:Policy:ReloadDebounceMilliseconds"] = "100",
        };
        Proxy = await ProxyHost.StartAsync(settings: settings);
    }

    public async Task DisposeAsync()
    {
        await Proxy.DisposeAsync();
        _policies.Dispose();
    }

    /// <summary>Writes a policy file (format version 1 is added) and reloads; the new version must be in force.</summary>
    protected async Task AddPolicyAsync(string name, string body)
    {
        await File.WriteAllTextAsync(Path.Combine(PolicyDirectory, name), "version: 1\n" + body);
        var version = Store.CurrentVersion.Hash;
        await Store.ReloadAsync();
        Assert.True(Store.CurrentVersion.Hash != version, $"the change was not put in force: {Store.LastRejection?.Errors[0]}");
    }

    /// <summary>The decisions recorded after <paramref name="afterId"/>.</summary>
    internal async Task<IReadOnlyList<DecisionRecord>> DecisionsAfterAsync(long afterId) => await Decisions.ReadAsync(afterId, 100_000);

    internal async Task<long> LastDecisionIdAsync() => (await Decisions.ReadAsync(0, 1_000_000)).LastOrDefault()?.Id ?? 0;
}
