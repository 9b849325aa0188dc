using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Audit;

/// <summary>
/// An HTTP witness that is down (nothing listens on its port) holds up no request, shows in
/// /healthz (Degraded, still 200) and in the logs, and, once it listens again, receives every
/// checkpoint signed meanwhile. The waits are on the server's own log events, never on a timer.
/// </summary>
public sealed class AuditWitnessOutageTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AWitnessDown_HoldsUpNoRequest_ShowsInHealthz_AndGetsEveryCheckpointWhenBack()
    {
        var port = TestWitnessServer.FreePort();
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var witnessed = new List<long>();
        var witnessedChanged = new SemaphoreSlim(0);
        using var logs = new FakeLoggerProvider(new FakeLogCollector(Options.Create(new FakeLogCollectorOptions
        {
            OutputSink = line =>
            {
                if (line.Contains("did not take the checkpoint", StringComparison.Ordinal))
                {
                    failed.TrySetResult();
                }

                const string Holds = "holds the checkpoint of ";
                if (line.IndexOf(Holds, StringComparison.Ordinal) is var at and >= 0)
                {
                    lock (witnessed)
                    {
                        witnessed.Add(long.Parse(line[(at + Holds.Length)..].Split(' ')[0], CultureInfo.InvariantCulture));
                    }

                    witnessedChanged.Release();
                }
            },
        })));
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["TrustedProxy:Audit:Witness:Url"] = $"http://127.0.0.1:{port}/witness",
            ["TrustedProxy:Audit:Witness:RetryInitialSeconds"] = "1",
            ["TrustedProxy:Audit:Witness:RetryMaxSeconds"] = "1",
            ["Logging:LogLevel:TrustedProxy.Audit"] = "Debug",
        }, logs: logs);
        var producer = proxy.Client(ProxyRole.Producer);
        var compliance = proxy.Client(ProxyRole.Compliance);

        await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var during = await CheckpointAsync(compliance);
        await failed.Task.WaitAsync(Timeout);

        var admin = proxy.Client(ProxyRole.Admin);
        using var response = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var check = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["checks"]!["audit-witness"]!;
        Assert.Equal("Degraded", check["status"]!.GetValue<string>());
        Assert.True(check["data"]!["http"]!["pending"]!.GetValue<int>() >= 1, check.ToJsonString());
        Assert.NotNull(check["data"]!["http"]!["lastError"]);

        // Requests go on while it is down.
        await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var last = await CheckpointAsync(compliance);

        await using var witness = await TestWitnessServer.StartAsync(port);
        while (true)
        {
            lock (witnessed)
            {
                if (witnessed.Contains(last.Size))
                {
                    break;
                }
            }

            Assert.True(await witnessedChanged.WaitAsync(Timeout), "the witness did not get the checkpoints after it came back");
        }

        var received = witness.Received;
        Assert.Contains(during, received);
        Assert.Contains(last, received);
        Assert.Equal(received.Select(c => c.Size).Order(), received.Select(c => c.Size));
    }

    private static async Task<AuditCheckpoint> CheckpointAsync(TrustedProxy.Client.TrustedProxyClient client) =>
        (await (await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/checkpoint"))).Content.ReadFromJsonAsync<AuditCheckpoint>())!;
}
