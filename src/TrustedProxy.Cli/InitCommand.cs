using System.CommandLine;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Cli;

internal static class InitCommand
{
    public static Command Create()
    {
        var organisation = new Option<string>("--org") { Description = "Organisation of the local client credentials", DefaultValueFactory = _ => "Local Hospital" };
        var hosts = new Option<string[]>("--host") { Description = "Host names and addresses for the proxy's TLS certificate", DefaultValueFactory = _ => ["localhost", "127.0.0.1", "::1"], AllowMultipleArgumentsPerToken = true };
        var retrievals = new Option<double?>("--retrievals-per-day") { Description = "The read load the site expects: retrievals (studies or series) a day; the read schedule's cover starts from it (default 200)" };
        var megabytes = new Option<double?>("--retrieval-megabytes") { Description = "The size of a retrieval in MB (default 500)" };
        var command = new Command("init", "A ready local set-up: the CA, the proxy's TLS certificate and one client credential per role under certs/ (recorded in the audit log under data/), and the declared read load") { organisation, hosts, retrievals, megabytes, Cli.Certs, AuditCommands.Data };
        Cli.SetAction(command, (parse, _) =>
        {
            // Checked before anything is created: a bad declaration changes nothing.
            var defaults = new TrustedProxy.ObliviousRetrieval.ObliviousRetrievalOptions();
            var perDay = parse.GetValue(retrievals) ?? defaults.DeclaredRetrievalsPerDay;
            var size = parse.GetValue(megabytes) ?? defaults.DeclaredRetrievalMegabytes;
            if (DeclaredLoad.Validate(perDay, size) is { Count: > 0 } errors)
            {
                Console.Error.WriteLine($"tproxy init: {string.Join("; ", errors)}");
                return Task.FromResult(Cli.Usage);
            }

            return AuditCommands.AuditedAsync(parse, audit => Initialize(parse, audit, perDay, size));
        });
        return command;

        Task<int> Initialize(ParseResult parse, TrustedProxy.Audit.AuditLog audit, double perDay, double size)
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            var result = LocalFederation.Initialize(paths, parse.GetValue(organisation)!, parse.GetValue(hosts)!, Environment.GetEnvironmentVariable(CaPassphrase.EnvironmentVariable), issueClients: true, TimeProvider.System, audit);
            Console.WriteLine(result.CreatedCa ? $"created CA           {paths.CaCertificate}" : $"kept existing CA     {paths.CaCertificate}");
            Console.WriteLine(result.CreatedServerCertificate ? $"created server cert  {paths.ServerCertificate}" : $"kept server cert     {paths.ServerCertificate}");
            foreach (var file in result.CreatedClientFiles)
            {
                Console.WriteLine($"created credential   {file}");
            }

            if (parse.GetValue(retrievals) is not null || parse.GetValue(megabytes) is not null)
            {
                Console.WriteLine($"declared read load   {DeclaredLoad.Write(Directory.GetCurrentDirectory(), perDay, size)}");
            }

            Console.WriteLine($"reads                {DeclaredLoad.Cost(perDay, size)}");

            return Task.FromResult(Cli.Ok);
        }
    }
}
