using TrustedProxy.Testing.Privacy.Wire;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

public sealed class WireProbeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Probe()
    {
        var run = await WireRun.RunAsync(new WireRunOptions { Control = WireControl.WireLeaks });
        var objects = WireObject.FromRequests(run.Requests);
        output.WriteLine($"{run.Requests.Count} requests, {objects.Count} objects, {run.EngineErrors} errors, {run.WallTime}");
        foreach (var r in WireClassifiers.All(objects, run.Kinds))
        {
            output.WriteLine(r.ToString());
        }

        output.WriteLine(WireClassifiers.Survival(objects, run.Kinds).ToString());
        foreach (var h in run.Requests.First(r => r.Method == "PUT" && r.Key is not null).Headers)
        {
            output.WriteLine($"{h.Key}: {h.Value}");
        }
    }
}
