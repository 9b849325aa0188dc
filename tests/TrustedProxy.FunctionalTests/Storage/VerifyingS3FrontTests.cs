using System.Net;
using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Testing.Storage;

namespace TrustedProxy.FunctionalTests.Storage;

/// <summary>
/// The test cloud's own checks, with raw HTTP requests (s3rver serves anonymous ones): it must refuse
/// what AWS refuses, or the tests behind it prove nothing.
/// </summary>
[Collection("s3rver")]
public sealed class VerifyingS3FrontTests(S3rverFixture s3rver) : IAsyncLifetime
{
    // "123456789" is the standard check input; its CRC-32 (IEEE) is 0xCBF43926 and its CRC-32C is 0xE3069283.
    private static readonly byte[] CheckInput = "123456789"u8.ToArray();

    private readonly HttpClient _http = new();
    private readonly string _bucket = "v" + Guid.NewGuid().ToString("N")[..20];

    private VerifyingS3Front Front => s3rver.Front;

    public async Task InitializeAsync()
    {
        using var response = await _http.PutAsync(Url(string.Empty), null);
        response.EnsureSuccessStatusCode();
        Front.Clear();
    }

    public Task DisposeAsync()
    {
        _http.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task APayloadHashThatIsNotTheBodys_IsRefused_AndNothingIsStored()
    {
        var body = Encoding.ASCII.GetBytes("what was sent");
        var (status, code) = await PutAsync("k", body, ("x-amz-content-sha256", Convert.ToHexStringLower(SHA256.HashData("what was hashed"u8))));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("XAmzContentSHA256Mismatch", code);
        Assert.Equal(HttpStatusCode.NotFound, await HeadAsync("k"));
        Assert.True(Assert.Single(Front.Requests, r => r.Method == "PUT").IsRefusal);
    }

    [Fact]
    public async Task TheRightPayloadHash_OrUnsignedPayload_IsStored()
    {
        var body = Encoding.ASCII.GetBytes("what was sent");

        Assert.Equal(HttpStatusCode.OK, (await PutAsync("signed", body, ("x-amz-content-sha256", Convert.ToHexStringLower(SHA256.HashData(body))))).Status);
        Assert.Equal(HttpStatusCode.OK, (await PutAsync("unsigned", body, ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))).Status);
        Assert.DoesNotContain(Front.Requests, r => r.IsRefusal);
    }

    [Fact]
    public async Task AWrongContentMd5_IsRefusedAsBadDigest_TheRightOneIsStored()
    {
        var body = Encoding.ASCII.GetBytes("some object");

        var wrong = await PutAsync("md5", body, ("Content-MD5", Convert.ToBase64String(MD5.HashData("another object"u8))));
        Assert.Equal((HttpStatusCode.BadRequest, "BadDigest"), wrong);
        Assert.Equal(HttpStatusCode.NotFound, await HeadAsync("md5"));

        Assert.Equal(HttpStatusCode.OK, (await PutAsync("md5", body, ("Content-MD5", Convert.ToBase64String(MD5.HashData(body))))).Status);
    }

    [Theory]
    [InlineData("x-amz-checksum-crc32", 0xCBF43926u)]
    [InlineData("x-amz-checksum-crc32c", 0xE3069283u)]
    public async Task ACrcChecksum_IsCheckedAgainstTheBody(string header, uint checkValue)
    {
        // S3 writes a CRC as base64 of its big-endian bytes.
        var ofCheckInput = Convert.ToBase64String([(byte)(checkValue >> 24), (byte)(checkValue >> 16), (byte)(checkValue >> 8), (byte)checkValue]);
        Assert.Equal(HttpStatusCode.OK, (await PutAsync("crc-right", CheckInput, (header, ofCheckInput))).Status);
        Assert.Equal((HttpStatusCode.BadRequest, "BadDigest"), await PutAsync("crc-wrong", "123456780"u8.ToArray(), (header, ofCheckInput)));
    }

    [Theory]
    [InlineData("x-amz-checksum-sha1")]
    [InlineData("x-amz-checksum-sha256")]
    public async Task AShaChecksum_IsCheckedAgainstTheBody(string header)
    {
        var body = Encoding.ASCII.GetBytes("checksummed");
        var digest = Convert.ToBase64String(header.EndsWith("sha1", StringComparison.Ordinal) ? SHA1.HashData(body) : SHA256.HashData(body));

        Assert.Equal(HttpStatusCode.OK, (await PutAsync("sha-right", body, (header, digest))).Status);
        Assert.Equal((HttpStatusCode.BadRequest, "BadDigest"), await PutAsync("sha-wrong", [.. body, 0], (header, digest)));
    }

    [Fact]
    public async Task IfNoneMatchStar_OnAnExistingKey_IsPreconditionFailed_AndTheFirstBodyStays()
    {
        Assert.Equal(HttpStatusCode.OK, (await PutAsync("once", [1, 2, 3], ("If-None-Match", "*"))).Status);

        Assert.Equal((HttpStatusCode.PreconditionFailed, "PreconditionFailed"), await PutAsync("once", [9], ("If-None-Match", "*")));

        Assert.Equal(new byte[] { 1, 2, 3 }, await _http.GetByteArrayAsync(Url("once")));
    }

    [Fact]
    public async Task EveryRequest_IsRecordedWithItsHeadersAndBody_InOrder()
    {
        var body = RandomNumberGenerator.GetBytes(100);

        await PutAsync("recorded", body, ("x-test-marker", "m1"));
        await HeadAsync("recorded");

        var requests = Front.Requests;
        Assert.Equal(["PUT", "HEAD"], requests.Select(r => r.Method));
        var put = requests[0];
        Assert.Equal($"/{_bucket}/recorded", put.Path);
        Assert.Equal("recorded", put.Key);
        Assert.Equal("m1", put.Header("X-Test-Marker"));
        Assert.Equal(100, put.BodyLength);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), put.BodySha256);
        Assert.Equal(body[..64], put.BodyPrefix);
        Assert.Equal(200, put.Status);
        Assert.True(requests[0].Time <= requests[1].Time);

        Front.Clear();
        Assert.Empty(Front.Requests);
    }

    [Fact]
    public async Task TheRefuseHook_AnswersWithoutForwarding()
    {
        Front.Refuse = r => r.Key == "hooked" ? (403, "AccessDenied") : null;
        try
        {
            Assert.Equal((HttpStatusCode.Forbidden, "AccessDenied"), await PutAsync("hooked", [1]));
        }
        finally
        {
            Front.Refuse = null;
        }

        Assert.Equal(HttpStatusCode.NotFound, await HeadAsync("hooked"));
    }

    private string Url(string key) => $"{Front.ServiceUrl}/{_bucket}{(key.Length == 0 ? string.Empty : "/" + key)}";

    private async Task<(HttpStatusCode Status, string? Code)> PutAsync(string key, byte[] body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, Url(key)) { Content = new ByteArrayContent(body) };
        foreach (var (name, value) in headers)
        {
            if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var start = text.IndexOf("<Code>", StringComparison.Ordinal);
        var code = start < 0 ? null : text[(start + 6)..text.IndexOf("</Code>", StringComparison.Ordinal)];
        return (response.StatusCode, code);
    }

    private async Task<HttpStatusCode> HeadAsync(string key)
    {
        using var response = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, Url(key)));
        return response.StatusCode;
    }
}
