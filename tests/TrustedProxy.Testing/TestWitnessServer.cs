using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TrustedProxy.Audit;

namespace TrustedProxy.Testing;

/// <summary>
/// A witness another organisation would run, as docs/audit-log.md specifies it: real Kestrel on a
/// loopback port, POST stores a checkpoint (append-only), GET lists them. It checks nothing;
/// <see cref="Tamper"/> is what its operator (or an attacker there) could do to what it holds.
/// </summary>
public sealed class TestWitnessServer : IAsyncDisposable
{
    private readonly List<string> _stored = [];
    private readonly Lock _gate = new();
    private readonly WebApplication _app;

    private TestWitnessServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/witness";

    public IReadOnlyList<AuditCheckpoint> Received
    {
        get
        {
            lock (_gate)
            {
                return [.. _stored.Select(json => AuditCheckpointFile.Parse(json, "stored"))];
            }
        }
    }

    /// <summary>Starts a witness on <paramref name="port"/> (0: any free one).</summary>
    public static async Task<TestWitnessServer> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        TestWitnessServer? server = null;
        app.MapPost("/witness", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            var json = await reader.ReadToEndAsync();
            lock (server!._gate)
            {
                server._stored.Add(json);
            }

            return Results.StatusCode(StatusCodes.Status201Created);
        });
        app.MapGet("/witness", () =>
        {
            lock (server!._gate)
            {
                return Results.Text("[" + string.Join(",", server._stored) + "]", "application/json");
            }
        });
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        server = new TestWitnessServer(app, bound);
        return server;
    }

    /// <summary>A port nothing listens on (yet): a witness that is down.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Tamper(int index, Action<JsonObject> change)
    {
        lock (_gate)
        {
            var checkpoint = (JsonObject)JsonNode.Parse(_stored[index])!;
            change(checkpoint);
            _stored[index] = checkpoint.ToJsonString();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
