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
        var uploads = new Option<double?>("--uploads-per-day") { Description = "The write load the site expects: uploads (studies or series, counting records re-written after a cloud read) a day; the upload cache's slot rate, and so its daily cloud writes, follow it (default 10)" };
        var uploadMegabytes = new Option<double?>("--upload-megabytes") { Description = "The size of an upload in MB (default 50)" };
        var sharesOut = new Option<string>("--shares-out") { Description = "Directory for the master key's share files (not inside --data)", DefaultValueFactory = _ => KeyCommands.DefaultSharesDirectory };
        var command = new Command("init", "A ready local set-up: the CA, the proxy's TLS certificate and one client credential per role under certs/ (recorded in the audit log under data/), the declared read and write load, and, with a new master key, its shares for custodians")
        {
            organisation, hosts, retrievals, megabytes, uploads, uploadMegabytes, KeyCommands.Shares, KeyCommands.Threshold, sharesOut, Cli.Certs, AuditCommands.Data,
        };
        Cli.SetAction(command, (parse, _) =>
        {
            // Checked before anything is created: a bad declaration changes nothing. What is not
            // given keeps what an earlier `init` declared, else the default.
            var earlier = DeclaredLoad.Read(Directory.GetCurrentDirectory());
            var load = new DeclaredLoad.Values(
                parse.GetValue(retrievals) ?? earlier.RetrievalsPerDay,
                parse.GetValue(megabytes) ?? earlier.RetrievalMegabytes,
                parse.GetValue(uploads) ?? earlier.UploadsPerDay,
                parse.GetValue(uploadMegabytes) ?? earlier.UploadMegabytes);
            var errors = DeclaredLoad.Validate(load).Concat(KeyCommands.Validate(parse, parse.GetValue(sharesOut)!, "--shares-out")).ToList();
            if (errors.Count > 0)
            {
                Console.Error.WriteLine($"tproxy init: {string.Join("; ", errors)}");
                return Task.FromResult(Cli.Usage);
            }

            var declares = new[] { retrievals, megabytes, uploads, uploadMegabytes }.Any(o => parse.GetValue(o) is not null);

            // Shares are dealt for the key this init creates (the audit log's opening creates it);
            // an existing key keeps the shares dealt before, and 'tproxy keys split' deals more.
            var data = parse.GetValue(AuditCommands.Data)!;
            var existingKey = Environment.GetEnvironmentVariable(ProxyServer.MasterKeyVariable) is { Length: > 0 }
                ? $"kept master key      from {ProxyServer.MasterKeyVariable}"
                : File.Exists(AuditCommands.MasterKeyPath(data)) ? $"kept master key      {AuditCommands.MasterKeyPath(data)}" : null;
            return AuditCommands.AuditedAsync(parse, audit => Initialize(parse, audit, load, declares, existingKey));
        });
        return command;

        async Task<int> Initialize(ParseResult parse, TrustedProxy.Audit.AuditLog audit, DeclaredLoad.Values load, bool declares, string? existingKey)
        {
            var paths = new CertificateAuthorityPaths(parse.GetValue(Cli.Certs)!);
            LocalFederationResult result;
            using (var master = AuditCommands.MasterKey(parse.GetValue(AuditCommands.Data)!, create: true)!)
            {
                result = LocalFederation.Initialize(paths, parse.GetValue(organisation)!, parse.GetValue(hosts)!, CaPassphrase.ForNewKey(master), issueClients: true, TimeProvider.System, audit, Cli.CertificateRegistry());
            }

            Console.WriteLine(result.CreatedCa ? $"created CA           {paths.CaCertificate}" : $"kept existing CA     {paths.CaCertificate}");
            Console.WriteLine(result.CreatedServerCertificate ? $"created server cert  {paths.ServerCertificate}" : $"kept server cert     {paths.ServerCertificate}");
            foreach (var file in result.CreatedClientFiles)
            {
                Console.WriteLine($"created credential   {file}");
            }

            if (declares)
            {
                Console.WriteLine($"declared load        {DeclaredLoad.Write(Directory.GetCurrentDirectory(), load)}");
            }

            Console.WriteLine($"reads                {DeclaredLoad.Cost(load.RetrievalsPerDay, load.RetrievalMegabytes)}");
            Console.WriteLine($"writes               {DeclaredLoad.WriteCost(load.UploadsPerDay, load.UploadMegabytes)}");

            if (existingKey is not null)
            {
                Console.WriteLine($"{existingKey}: not split again ('tproxy keys split' deals a new set of shares)");
                return Cli.Ok;
            }

            var data = parse.GetValue(AuditCommands.Data)!;
            Console.WriteLine($"created master key   {AuditCommands.MasterKeyPath(data)}");
            using var keys = AuditCommands.MasterKey(data, create: false)!;
            await KeyCommands.WriteSharesAsync(keys, parse.GetValue(KeyCommands.Threshold), parse.GetValue(KeyCommands.Shares), parse.GetValue(sharesOut)!, audit);
            return Cli.Ok;
        }
    }
}
