using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>
/// The enforcement point is the only way in: every endpoint of the application's own route table
/// (new ones included, as they appear there) declares its action, and a subject the policy denies
/// gets 403 from each, with exactly one decision recorded for exactly that route.
/// </summary>
public sealed class RouteTableTests : ProxyTest
{
    [Fact]
    public async Task EveryEndpointOfTheRouteTable_AsksThePolicy_AndADeniedSubjectGets403AndOneDecisionForThatRoute()
    {
        var routes = Routes.All(Proxy.Services);
        using var suspended = Proxy.OpenCa().IssueClient("Suspended Clinic", ProxyRole.Consumer, TimeSpan.FromDays(1));
        var client = Proxy.Client(suspended.Certificate);
        var log = Proxy.Services.GetRequiredService<DecisionLog>();
        var last = (await log.ReadAsync(0, 100_000)).LastOrDefault()?.Id ?? 0;

        Assert.True(routes.Count >= 30, $"only {routes.Count} routes found");
        foreach (var (endpoint, method, action) in routes)
        {
            var resource = Routes.Resource(endpoint, method);
            Assert.True(action is not null, $"{resource} declares no action");

            using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), Routes.Path(endpoint.RoutePattern, _ => "1")));

            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(403 == (int)response.StatusCode, $"{resource}: {(int)response.StatusCode}");
            Assert.Equal("urn:trustedproxy:problem:forbidden", problem.GetProperty("type").GetString());
            Assert.Equal("suspended-member", problem.GetProperty("rule").GetString());
            var decision = Assert.Single(await log.ReadAsync(last, 100));
            Assert.Equal((resource, false, "suspended-member", action.ToString()), (decision.Resource, decision.Permitted, decision.Rule, decision.Action));
            Assert.Equal("Suspended Clinic", decision.Organisation);
            last = decision.Id;
        }
    }
}
