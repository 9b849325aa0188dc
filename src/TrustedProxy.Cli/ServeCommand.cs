using System.CommandLine;
using Microsoft.Extensions.Hosting;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "Configuration file (default: config/appsettings.json when present)" };
        var urls = new Option<string[]>("--url") { Description = "HTTPS address to listen on (repeatable); overrides the configuration", AllowMultipleArgumentsPerToken = true };
        var backend = new Option<string?>("--backend") { Description = "Storage backend: filesystem, azure-blob or s3; overrides the configuration" };
        var command = new Command("serve", "Run the proxy (initialises local certificates on first run)") { config, urls, backend };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>();
            var listen = parse.GetValue(urls) ?? [];
            for (var i = 0; i < listen.Length; i++)
            {
                overrides[$"TrustedProxy:Server:Urls:{i}"] = listen[i];
            }

            if (parse.GetValue(backend) is { } name)
            {
                overrides["TrustedProxy:Storage:Backend"] = name;
            }

            var configFile = parse.GetValue(config) ?? (File.Exists(Path.Combine("config", "appsettings.json")) ? Path.Combine("config", "appsettings.json") : null);
            var app = await ProxyServer.BuildAsync(new ProxyServerSettings { ContentRoot = Directory.GetCurrentDirectory(), ConfigurationFile = configFile, Overrides = overrides }, cancellationToken);
            await app.StartAsync(cancellationToken);
            foreach (var address in ProxyServer.ListeningAddresses(app))
            {
                Console.WriteLine($"TrustedProxy listening on {address} (mutual TLS; client credentials in certs/clients)");
            }

            await app.WaitForShutdownAsync(cancellationToken);
            return Cli.Ok;
        });
        return command;
    }
}
