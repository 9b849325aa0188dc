using TrustedProxy.Database;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Tests.Database;

public sealed class DatabaseOptionsTests
{
    [Fact]
    public void TheDefault_IsSqlite_WithNothingElseToSet()
    {
        var options = new DatabaseOptions();

        Assert.Empty(options.Validate());
        Assert.Equal(DatabaseEngine.Sqlite, options.ParsedEngine);
    }

    [Theory]
    [InlineData("postgresql", "Host=db.example;Database=tproxy;Username=tproxy", DatabaseEngine.PostgreSql)]
    [InlineData("PostgreSQL", "Host=db1,db2;Database=tproxy;Target Session Attributes=primary", DatabaseEngine.PostgreSql)]
    [InlineData("SQLite", null, DatabaseEngine.Sqlite)]
    public void ValidChoices_AreAccepted(string engine, string? connectionString, DatabaseEngine expected)
    {
        var options = new DatabaseOptions { Engine = engine, ConnectionString = connectionString };

        Assert.Empty(options.Validate());
        Assert.Equal(expected, options.ParsedEngine);
    }

    [Theory]
    [InlineData("mysql", null, "unknown engine 'mysql'")]
    [InlineData("postgresql", null, "ConnectionString: required with Engine postgresql")]
    [InlineData("postgresql", "Database=tproxy", "names no Host")]
    [InlineData("postgresql", "Host=db.example", "names no Database")]
    [InlineData("sqlite", "Host=db.example;Database=tproxy", "only read with Engine postgresql")]
    public void InvalidChoices_AreNamed(string engine, string? connectionString, string expected)
    {
        var error = Assert.Single(new DatabaseOptions { Engine = engine, ConnectionString = connectionString }.Validate());

        Assert.StartsWith("TrustedProxy:Database:", error);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void AnUnreadableConnectionString_IsRefused_WithoutRepeatingIt()
    {
        var error = Assert.Single(new DatabaseOptions { Engine = "postgresql", ConnectionString = "Host=db;Database=tproxy;Password=hunter2;Port=not-a-port" }.Validate());

        Assert.Contains("is not an Npgsql connection string", error);
        Assert.DoesNotContain("hunter2", error);
        Assert.DoesNotContain("not-a-port", error);
    }

    [Fact]
    public async Task AtStartUp_DatabaseErrors_AreListedWithTheOthers_BeforeAnythingIsCreated()
    {
        using var directory = new TemporaryDirectory();

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => Server.Hosting.ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
                ["TrustedProxy:Storage:Backend"] = "filesystem",
                ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
                ["TrustedProxy:Database:Engine"] = "postgresql",
                ["TrustedProxy:Dicom:MaxSequenceDepth"] = "0",
            },
        }));

        Assert.Equal(2, error.Errors.Count);
        Assert.Contains(error.Errors, e => e.StartsWith("TrustedProxy:Database:ConnectionString: required", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.Contains("MaxSequenceDepth"));
        Assert.False(Directory.Exists(Path.Combine(directory.Path, "certs")), "nothing is created before the configuration is valid");
    }
}
