using TrustedProxy.Testing.Privacy.Wire;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

public sealed class WireProbeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Probe()
    {
        var run = await WireRun.RunAsync(new WireRunOptions
        {
            Duration = TimeSpan.FromMinutes(5),
            Control = WireControl.RealNeverDeleted | WireControl.StableBodies,
            Cache = WireRunOptions.ScaledDefaults(WireRunOptions.DefaultDuration) with { MeanDummyLifetimeSeconds = 20 },
        });
        output.WriteLine($"{run.EngineErrors} errors; " + string.Join(", ", run.Requests.GroupBy(r => r.Method + " " + r.Status).Select(g => $"{g.Key}: {g.Count()}")));
        output.WriteLine(string.Join(", ", run.Kinds.GroupBy(k => k.Value).Select(g => $"{g.Key}: {g.Count()}")));
    }
}
