namespace TrustedProxy.Database;

/// <summary>
/// One feature's schema: where its numbered scripts live (Migrations/{Name}/{engine}/), the table
/// recording which of them ran, and how errors name it. Each schema keeps its own version table,
/// so that schemas sharing one PostgreSQL database never read each other's versions.
/// </summary>
internal sealed record DatabaseSchema(string Name, string VersionTable, string Description)
{
    /// <summary>The proxy's index (records, blocks, decisions, policy versions): schema_version, as before the scripts moved.</summary>
    public static readonly DatabaseSchema Records = new("Records", "schema_version", "index");

    /// <summary>What the CA issued and revoked, and the CRL number.</summary>
    public static readonly DatabaseSchema CertificateRegistry = new("CertificateRegistry", "ca_schema_version", "certificate registry");
}
