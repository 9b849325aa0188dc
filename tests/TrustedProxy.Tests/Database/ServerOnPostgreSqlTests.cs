using Dapper;
using Npgsql;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Tests.Database;

/// <summary>A proxy configured with TrustedProxy:Database on PostgreSQL: what follows it so far, and what does not.</summary>
public sealed class ServerOnPostgreSqlTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task TheCaRegistryIsInPostgreSql_TheIndexStaysInSqlite()
    {
        using var directory = new TemporaryDirectory();

        await using (var app = await ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
                ["TrustedProxy:Storage:Backend"] = "filesystem",
                ["TrustedProxy:Storage:filesystem:Root"] = "cloud",
                ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
                ["TrustedProxy:Database:Engine"] = "postgresql",
                ["TrustedProxy:Database:ConnectionString"] = database.ConnectionString,
            },
        }))
        {
            // The first run created the CA and issued the server's and the local clients' certificates.
            await using var connection = new NpgsqlConnection(database.ConnectionString);
            await connection.OpenAsync();
            var kinds = (await connection.QueryAsync<string>("SELECT kind FROM issued")).ToList();
            Assert.Contains("server", kinds);
            Assert.True(kinds.Count > 1, "the local clients' certificates are in PostgreSQL too");
            Assert.True(await connection.ExecuteScalarAsync<long>("SELECT value FROM crl_number") >= 1, "the CRL published at start took its number from PostgreSQL");
        }

        Assert.True(File.Exists(Path.Combine(directory.Path, "certs", "ca", "ca.crt.pem")));
        Assert.False(File.Exists(Path.Combine(directory.Path, "certs", "ca", "registry.db")));
        Assert.True(File.Exists(Path.Combine(directory.Path, "data", "proxy.db")));
    }
}
