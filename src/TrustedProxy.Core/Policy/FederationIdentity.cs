namespace TrustedProxy.Policy;

/// <summary>What a member of the federation may be. Carried in the client certificate.</summary>
public enum ProxyRole
{
    /// <summary>A hospital that uploads records.</summary>
    Producer,

    /// <summary>A hospital that finds and retrieves records.</summary>
    Consumer,

    /// <summary>A compliance officer who reads policies and audit data.</summary>
    Compliance,

    /// <summary>An administrator of the proxy and its certificate authority.</summary>
    Admin,

    /// <summary>
    /// A hospital's PACS, which both archives and retrieves with one certificate: the shipped policy
    /// lets it upload, and search and retrieve as a consumer may (docs/dicomweb.md).
    /// </summary>
    Pacs,
}

/// <summary>Who is calling: the organisation and role sealed into their certificate by the proxy's CA.</summary>
/// <param name="Organisation">The member organisation's name as issued.</param>
/// <param name="Role">The role the certificate was issued for.</param>
/// <param name="CertificateSerial">The certificate's serial number, uppercase hex.</param>
public sealed record FederationIdentity(string Organisation, ProxyRole Role, string CertificateSerial);

/// <summary>Role names as they appear in certificates, configuration and the command line.</summary>
public static class ProxyRoles
{
    public static string ToName(ProxyRole role) => role switch
    {
        ProxyRole.Producer => "producer",
        ProxyRole.Consumer => "consumer",
        ProxyRole.Compliance => "compliance",
        ProxyRole.Admin => "admin",
        ProxyRole.Pacs => "pacs",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    public static bool TryParse(string? name, out ProxyRole role)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "producer": role = ProxyRole.Producer; return true;
            case "consumer": role = ProxyRole.Consumer; return true;
            case "compliance": role = ProxyRole.Compliance; return true;
            case "admin": role = ProxyRole.Admin; return true;
            case "pacs": role = ProxyRole.Pacs; return true;
            default: role = default; return false;
        }
    }

    public static IReadOnlyList<string> Names { get; } = ["producer", "consumer", "compliance", "admin", "pacs"];
}
