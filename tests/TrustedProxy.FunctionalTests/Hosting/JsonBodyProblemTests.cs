using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// The endpoints that take JSON answer a body they cannot read (malformed, the wrong shape, or over
/// the server's body limit) with problem+json, never a bare status, and never with the parser's text.
/// </summary>
public sealed class JsonBodyProblemTests : ProxyTest
{
    public static TheoryData<string, ProxyRole, string> Cases
    {
        get
        {
            var cases = new TheoryData<string, ProxyRole, string>();
            foreach (var body in new[] { "malformed", "wrong-shape", "oversized" })
            {
                cases.Add("api/v1/policy/what-if", ProxyRole.Compliance, body);
                cases.Add("api/v1/ca/certificates", ProxyRole.Admin, body);
                cases.Add("api/v1/ca/certificates/0A1B2C/revoke", ProxyRole.Admin, body);
                cases.Add("api/v1/oblivious/offers", ProxyRole.Consumer, body);
            }

            return cases;
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AJsonEndpoint_AnswersAnUnreadableBody_WithProblemJson(string path, ProxyRole role, string body)
    {
        var bytes = body switch
        {
            "malformed" => """{"organisation": "Local Hospital", "role": """u8.ToArray(),
            "wrong-shape" => """{"organisation": ["not", "a", "string"], "handles": 7, "choices": "two", "reason": {}}"""u8.ToArray(),

            // Twice the server's default body limit (TrustedProxy:Server:MaxRequestBodyBytes, 1 MiB).
            _ => Encoding.ASCII.GetBytes($$"""{"organisation": "{{new string('a', 2 * 1024 * 1024)}}"}"""),
        };
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await Proxy.Client(role).SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = content });
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(body == "oversized" ? 413 : 400, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal(body == "oversized" ? "urn:trustedproxy:problem:payload-too-large" : "urn:trustedproxy:problem:bad-request", problem.GetProperty("type").GetString());
        Assert.DoesNotContain("Exception", text, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", text, StringComparison.Ordinal);
    }
}
