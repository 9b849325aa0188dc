namespace TrustedProxy.FunctionalTests;

/// <summary>A test class with its own real proxy, started before each test and stopped after.</summary>
public abstract class ProxyTest : IAsyncLifetime
{
    protected ProxyHost Proxy { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Proxy = await StartProxyAsync();
        await AfterStartAsync();
    }

    public async Task DisposeAsync() => await Proxy.DisposeAsync();

    protected virtual Task<ProxyHost> StartProxyAsync() => ProxyHost.StartAsync();

    protected virtual Task AfterStartAsync() => Task.CompletedTask;
}
