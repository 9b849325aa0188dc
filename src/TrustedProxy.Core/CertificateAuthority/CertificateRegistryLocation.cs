using TrustedProxy.Database;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Where the CA registry lives: registry.db beside the CA (SQLite, the default), or the configured
/// PostgreSQL database. The server and the CLI resolve it from the same configuration
/// (<c>TrustedProxy:Database</c>), so a revocation made by either is seen by both.
/// A class rather than a record: its connection string may hold a password and must not be printed.
/// </summary>
internal sealed class CertificateRegistryLocation
{
    private readonly string? _connectionString;

    private CertificateRegistryLocation(DatabaseEngine engine, string? connectionString)
    {
        Engine = engine;
        _connectionString = connectionString;
    }

    /// <summary>registry.db in the CA directory.</summary>
    public static CertificateRegistryLocation BesideTheCa { get; } = new(DatabaseEngine.Sqlite, null);

    public DatabaseEngine Engine { get; }

    /// <summary>From validated options.</summary>
    public static CertificateRegistryLocation From(DatabaseOptions options) =>
        options.ParsedEngine == DatabaseEngine.PostgreSql ? new(DatabaseEngine.PostgreSql, options.ConnectionString) : BesideTheCa;

    public IssuedCertificateRegistry Open(CertificateAuthorityPaths paths, TimeProvider time) =>
        Engine == DatabaseEngine.PostgreSql ? IssuedCertificateRegistry.OnPostgreSql(_connectionString!, time) : new IssuedCertificateRegistry(paths.Registry, time);

    /// <summary>Whether a registry can be read without creating one (a CA without a registry file has issued nothing yet).</summary>
    public bool Exists(CertificateAuthorityPaths paths) => Engine == DatabaseEngine.PostgreSql || File.Exists(paths.Registry);
}
