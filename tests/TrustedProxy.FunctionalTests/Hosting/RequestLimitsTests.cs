using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// The concurrency limits (TrustedProxy:Limits): past a client's share of uploads, the next upload
/// is refused at once with 503 problem+json and Retry-After, changes nothing, and leaves other kinds
/// of request alone; once the first ends, uploads are taken again.
/// </summary>
public sealed class RequestLimitsTests
{
    [Fact]
    public async Task PastAClientsShareOfUploads_TheNextIsRefusedWith503AndRetryAfter_UntilTheFirstEnds()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["TrustedProxy:Limits:MaxConcurrentUploadsPerClient"] = "1",
            ["TrustedProxy:Limits:QueueLimit"] = "0",
            ["TrustedProxy:Limits:RetryAfterSeconds"] = "7",
        });
        var producer = proxy.Client(ProxyRole.Producer);
        var file = new DicomFileBuilder().Patient("LIMIT1", "Limit^Test").PixelData(48 << 20, seed: 5).Build();

        // An upload whose client has sent half its body and waits: it holds its place.
        var half = new TaskCompletionSource();
        var rest = new TaskCompletionSource();
        using var held = new HeldBody(file, half, rest);
        var first = producer.SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/records") { Content = held });
        // Half the file is far more than the sockets' buffers hold, so its write completes only once
        // the server is reading the body: the upload holds its place.
        await half.Task.WaitAsync(TimeSpan.FromSeconds(60));

        using (var refused = await producer.SendAsync(Upload(new DicomFileBuilder().Patient("LIMIT2", "Limit^Test").Build())))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(7), refused.Headers.RetryAfter?.Delta);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("urn:trustedproxy:problem:busy", problem.GetProperty("type").GetString());
        }

        // Other kinds of request are not held up by uploads.
        using (var search = await proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/records")))
        {
            Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        }

        rest.SetResult();
        using (var done = await first)
        {
            Assert.True(done.IsSuccessStatusCode, $"{(int)done.StatusCode}: {await done.Content.ReadAsStringAsync()}");
        }

        using var again = await producer.SendAsync(Upload(new DicomFileBuilder().Patient("LIMIT3", "Limit^Test").Build()));
        Assert.True(again.IsSuccessStatusCode, $"{(int)again.StatusCode}");

        // The refused upload left nothing: two records, the first and the last.
        Assert.Equal(2, (await producer.SearchAsync(new Client.RecordSearch())).Items.Count);
    }

    private static HttpRequestMessage Upload(byte[] file)
    {
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        return new HttpRequestMessage(HttpMethod.Post, "api/v1/records") { Content = content };
    }

    /// <summary>A body sent in two halves: the second only when the test says so.</summary>
    private sealed class HeldBody : HttpContent
    {
        private readonly byte[] _file;
        private readonly TaskCompletionSource _half;
        private readonly TaskCompletionSource _rest;

        public HeldBody(byte[] file, TaskCompletionSource half, TaskCompletionSource rest)
        {
            (_file, _half, _rest) = (file, half, rest);
            Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(_file.AsMemory(0, _file.Length / 2));
            await stream.FlushAsync();
            _half.SetResult();
            await _rest.Task;
            await stream.WriteAsync(_file.AsMemory(_file.Length / 2));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _file.Length;
            return true;
        }
    }
}
