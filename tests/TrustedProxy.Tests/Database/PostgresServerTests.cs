using Npgsql;
using TrustedProxy.Testing.Database;

namespace TrustedProxy.Tests.Database;

public sealed class PostgresServerTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task EachTestClassGetsItsOwnDatabase_OnARealPostgreSql15()
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var version = new NpgsqlCommand("SHOW server_version_num", connection);
        Assert.StartsWith("15", (string)(await version.ExecuteScalarAsync())!);
        await using var create = new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", connection);
        await create.ExecuteNonQueryAsync();

        var server = await PostgresServer.SharedAsync();
        var other = await server.CreateDatabaseAsync();
        await using var otherConnection = new NpgsqlConnection(other);
        await otherConnection.OpenAsync();
        await using var tables = new NpgsqlCommand("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", otherConnection);
        Assert.Equal(0L, await tables.ExecuteScalarAsync());
        await otherConnection.CloseAsync();
        await server.DropDatabaseAsync(other);
    }
}
