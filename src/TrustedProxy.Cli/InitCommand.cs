using System.CommandLine;
using TrustedProxy.CertificateAuthority;

namespace TrustedProxy.Cli;

internal static class InitCommand
{
    public static Command Create()
    {
        var organisation = new Option<string>("--org") { Description = "Organisation of the local client credentials", DefaultValueFactory = _ => "Local Hospital" };
        var hosts = new Option<string[]>("--host") { Description = "Host names and addresses for the proxy's TLS certificate", DefaultValueFactory = _ => ["localhost", "127.0.0.1", "::1"], AllowMultipleArgumentsPerToken = true };
        var command = new Command("init", "A ready local set-up: the CA, the proxy's TLS certificate and one client credential per role under certs/ (recorded in the audit log under data/)") { organisation, hosts, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) => AuditCommands.AuditedAsync(parse, audit =>
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var result = LocalFederation.Initialize(paths, parse.GetValue(organisation)!, parse.GetValue(hosts)!, Environment.GetEnvironmentVariable(CaPassphrase.EnvironmentVariable), issueClients: true, TimeProvider.System, audit);
            Console.WriteLine(result.CreatedCa ? $"created CA           {paths.CaCertificate}" : $"kept existing CA     {paths.CaCertificate}");
            Console.WriteLine(result.CreatedServerCertificate ? $"created server cert  {paths.ServerCertificate}" : $"kept server cert     {paths.ServerCertificate}");
            foreach (var file in result.CreatedClientFiles)
            {
                Console.WriteLine($"created credential   {file}");
            }

            return Task.FromResult(Cli.Ok);
        }));
        return command;
    }
}
