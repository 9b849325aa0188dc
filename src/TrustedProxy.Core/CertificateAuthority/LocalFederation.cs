using TrustedProxy.Audit;
using TrustedProxy.Policy;

namespace TrustedProxy.CertificateAuthority;

/// <summary>What <see cref="LocalFederation.Initialize"/> created.</summary>
internal sealed record LocalFederationResult(bool CreatedCa, bool CreatedServerCertificate, IReadOnlyList<string> CreatedClientFiles);

/// <summary>
/// A ready local set-up in one step (<c>tproxy init</c>, and <c>tproxy serve</c> on first run):
/// the CA, the proxy's TLS certificate, and one client credential per role for a local
/// organisation. Whatever already exists is kept, so running it twice changes nothing.
/// </summary>
internal static class LocalFederation
{
    public static readonly TimeSpan ServerValidity = TimeSpan.FromDays(397);
    public static readonly TimeSpan ClientValidity = TimeSpan.FromDays(365);

    public static LocalFederationResult Initialize(CertificateAuthorityPaths paths, string organisation, IReadOnlyList<string> serverHostNames, string? passphrase, bool issueClients, TimeProvider time, AuditLog? audit = null, CertificateRegistryLocation? registry = null)
    {
        var createdCa = !paths.CaExists;
        var ca = createdCa
            ? ProxyCertificateAuthority.Create(paths, "TrustedProxy Root CA", passphrase, time, audit, registry)
            : ProxyCertificateAuthority.Open(paths, CaPassphrase.Resolve(paths) ?? passphrase ?? throw new CertificateAuthorityException(
                $"no passphrase for the CA key: set {CaPassphrase.EnvironmentVariable}, or the master key it was derived from"), time, audit, registry);

        var createdServer = false;
        if (!File.Exists(paths.ServerCertificate) || !File.Exists(paths.ServerPrivateKey))
        {
            Crypto.SecretFile.EnsurePrivateDirectory(paths.ServerDirectory);
            using var server = ca.IssueServer(serverHostNames, ServerValidity);
            server.WritePem(paths.ServerCertificate, paths.ServerPrivateKey);
            createdServer = true;
        }

        var created = new List<string>();
        if (issueClients)
        {
            Crypto.SecretFile.EnsurePrivateDirectory(paths.ClientsDirectory);
            foreach (var role in Enum.GetValues<ProxyRole>())
            {
                var stem = ClientFileStem(organisation, role);
                var p12 = Path.Combine(paths.ClientsDirectory, stem + ".p12");
                if (File.Exists(p12))
                {
                    continue;
                }

                using var credential = ca.IssueClient(organisation, role, ClientValidity);
                WriteClientCredential(paths, stem, credential, password: string.Empty);
                created.Add(p12);
            }
        }

        return new LocalFederationResult(createdCa, createdServer, created);
    }

    public static string ClientFileStem(string organisation, ProxyRole role) =>
        $"{OrganisationName.ToFileStem(organisation)}-{ProxyRoles.ToName(role)}";

    /// <summary>Writes PKCS#12 (for the client library and the CLI) and PEM (for curl and load tools); keys 0600.</summary>
    public static void WriteClientCredential(CertificateAuthorityPaths paths, string stem, IssuedCredential credential, string password)
    {
        Crypto.SecretFile.EnsurePrivateDirectory(paths.ClientsDirectory);
        Crypto.SecretFile.Write(Path.Combine(paths.ClientsDirectory, stem + ".p12"), credential.ExportPkcs12(password));
        credential.WritePem(Path.Combine(paths.ClientsDirectory, stem + ".crt.pem"), Path.Combine(paths.ClientsDirectory, stem + ".key.pem"));
    }
}
