using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>Bad input gets a clear problem+json answer and changes nothing: no index row, no cloud object, no staged file.</summary>
public sealed class BadInputTests : ProxyTest
{
    private const long UploadLimit = 256 * 1024;
    private TrustedProxyClient _producer = null!;
    private string _existingHandle = null!;

    protected override Task<ProxyHost> StartProxyAsync() =>
        ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Records:MaxUploadBytes"] = UploadLimit.ToString() });

    protected override async Task AfterStartAsync()
    {
        _producer = Proxy.Client(ProxyRole.Producer);
        _existingHandle = (await _producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("P1", "Doe^Jane").Build()))).Handle;
    }

    [Fact]
    public Task ABodyThatIsNotDicom_Gets415() => AssertRefusedWithoutTrace(
        Post("this is a text file, not DICOM"u8.ToArray()), HttpStatusCode.UnsupportedMediaType, "not-dicom-part10");

    [Fact]
    public Task AWrongContentType_Gets415() => AssertRefusedWithoutTrace(
        Post(new DicomFileBuilder().Build(), "text/plain"), HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");

    [Fact]
    public Task ATruncatedDicomFile_Gets400() => AssertRefusedWithoutTrace(
        Post(File.ReadAllBytes(Path.Combine(DicomCorpus.TestFiles, "MR_truncated.dcm"))), HttpStatusCode.BadRequest, "invalid-dicom");

    [Fact]
    public Task ABodyOverTheLimit_WithItsLengthDeclared_Gets413() => AssertRefusedWithoutTrace(
        Post(new DicomFileBuilder().PixelData((int)UploadLimit * 2).Build()), HttpStatusCode.RequestEntityTooLarge, "payload-too-large");

    [Fact]
    public Task ABodyOverTheLimit_SentChunked_Gets413() => AssertRefusedWithoutTrace(
        Post(new DicomFileBuilder().PixelData((int)UploadLimit * 2).Build(), chunked: true), HttpStatusCode.RequestEntityTooLarge, "payload-too-large");

    [Fact]
    public Task AFileWithAnImpossiblyDeepStructure_Gets400() => AssertRefusedWithoutTrace(
        Post([.. new DicomFileBuilder().Build(), .. Enumerable.Repeat<byte[]>([0x40, 0x00, 0x30, 0xA7, (byte)'S', (byte)'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF], 5000).SelectMany(b => b)]),
        HttpStatusCode.BadRequest, "dicom-limit-exceeded");

    [Fact]
    public async Task AnUnknownHandle_Gets404_OnEveryRecordEndpoint()
    {
        var unknown = RecordHandle.New();
        await AssertRefusedWithoutTrace(() => Proxy.Client(ProxyRole.Consumer).GetAsync(unknown), 404, "record-not-found");
        await AssertRefusedWithoutTrace(() => Proxy.Client(ProxyRole.Consumer).FetchAsync(unknown, Stream.Null), 404, "record-not-found");
        await AssertRefusedWithoutTrace(() => Proxy.Client(ProxyRole.Admin).DeleteAsync(unknown), 404, "record-not-found");
        await AssertRefusedWithoutTrace(() => Proxy.Client(ProxyRole.Consumer).GetAsync("..%2F..%2Fetc%2Fpasswd"), 404, "record-not-found");
    }

    [Fact]
    public async Task ABadSearchQuery_Gets400()
    {
        using var response = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/records?from=yesterday&limit=-4"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("urn:trustedproxy:problem:invalid-query", problem.GetProperty("type").GetString());
        Assert.Contains("from", problem.GetProperty("detail").GetString());
        Assert.Contains("limit", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task AnUnknownEndpoint_Gets404ProblemJson()
    {
        using var response = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/nothing-here"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    private Func<Task> Post(byte[] body, string contentType = "application/dicom", bool chunked = false) => async () =>
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/v1/records");
        HttpContent content = chunked ? new StreamContent(new NonSeekableStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Content = content;
        if (chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }
        else
        {
            // As a client of large uploads should: the body waits for the server's go-ahead, so a
            // refusal by its declared length is read, not lost to a broken pipe while the body is
            // still being sent to a server that has answered and closed.
            request.Headers.ExpectContinue = true;
        }

        using var response = await _producer.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            throw new TrustedProxyException((int)response.StatusCode, problem.GetProperty("type").GetString(), problem.GetProperty("title").GetString()!, problem.GetProperty("detail").GetString()!);
        }
    };

    private Task AssertRefusedWithoutTrace(Func<Task> action, HttpStatusCode status, string problem) => AssertRefusedWithoutTrace(action, (int)status, problem);

    private async Task AssertRefusedWithoutTrace(Func<Task> action, int status, string problem)
    {
        var objectsBefore = (await Proxy.CloudObjectsAsync()).Select(o => o.Name).Order().ToList();
        var recordsBefore = await Proxy.Services.GetService<RecordIndex>()!.CountAsync();

        var error = await Assert.ThrowsAsync<TrustedProxyException>(action);

        Assert.Equal(status, error.Status);
        Assert.Equal($"urn:trustedproxy:problem:{problem}", error.ProblemType);
        Assert.False(string.IsNullOrWhiteSpace(error.Detail));
        Assert.Equal(objectsBefore, (await Proxy.CloudObjectsAsync()).Select(o => o.Name).Order().ToList());
        Assert.Equal(recordsBefore, await Proxy.Services.GetService<RecordIndex>()!.CountAsync());
        Assert.Empty(Directory.GetFiles(Path.Combine(Proxy.Root, "data", "staging")));
        Assert.Equal(_existingHandle, (await Proxy.Client(ProxyRole.Consumer).GetAsync(_existingHandle)).Handle);
    }

    private sealed class NonSeekableStream(byte[] content) : MemoryStream(content)
    {
        public override bool CanSeek => false;
    }
}

internal static class ServiceProviderExtensions
{
    public static T? GetService<T>(this IServiceProvider services) => (T?)services.GetService(typeof(T));
}
