using TrustedProxy.Testing.Database;

namespace TrustedProxy.Tests.Database;

/// <summary>
/// A fresh PostgreSQL database for one test class (an xunit class fixture) on the run's shared
/// cluster, dropped when the class is done.
/// </summary>
public sealed class PostgresDatabase : IAsyncLifetime
{
    private PostgresServer? _server;

    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.SharedAsync();
        ConnectionString = await _server.CreateDatabaseAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null && ConnectionString.Length > 0)
        {
            await _server.DropDatabaseAsync(ConnectionString);
        }
    }
}
