using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.FunctionalTests.Audit;

/// <summary>
/// If the audit log cannot be written, requests are refused (503 audit-unavailable) and nothing is
/// half-done: no index row, no staged file, no cloud object, no decision row. The failures are real
/// and hold when the tests run as root: a full disk (/dev/full), the audit directory replaced by a
/// file, the log's path taken by a directory.
/// </summary>
public sealed class AuditFailClosedTests
{
    [Fact]
    public async Task WithAFullDisk_EveryRequestIsRefused_AndNothingIsDone()
    {
        using var root = new TemporaryDirectory();

        // Certificates made beforehand (without a log), so that the server has nothing to record at start-up.
        LocalFederation.Initialize(new CertificateAuthorityPaths(Path.Combine(root.Path, "certs")), "Local Hospital", ["localhost", "127.0.0.1"], passphrase: null, issueClients: true, TimeProvider.System);
        Directory.CreateDirectory(Path.Combine(root.Path, "data", "audit"));
        File.CreateSymbolicLink(Path.Combine(root.Path, "data", "audit", "audit.log"), "/dev/full");
        await using var proxy = await ProxyHost.StartAsync(root: root.Path);

        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("FULL-1", "Disk^Full").Build())));
        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch()));
        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Admin).IssueCertificateAsync("Local Hospital", "consumer", pkcs12Password: "a long enough password"));
        Assert.Equal(6, proxy.OpenCa().List().Count); // the server's and the five local credentials, no more
    }

    [Fact]
    public async Task WithTheAuditDirectoryReplacedByAFile_RequestsAreRefused_UntilItIsBack()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var producer = proxy.Client(ProxyRole.Producer);
        var kept = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("KEPT-1", "Kept^Karl").Build()));
        var audit = Path.Combine(proxy.Root, "data", "audit");
        Directory.Move(audit, audit + ".aside");
        File.WriteAllText(audit, "not a directory");

        await AssertRefusedAsync(proxy, () => producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("LOST-1", "Lost^Lars").Build())));
        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Consumer).FetchAsync(kept.Handle, Stream.Null));
        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Admin).DeleteAsync(kept.Handle));

        File.Delete(audit);
        Directory.Move(audit + ".aside", audit);
        await proxy.Client(ProxyRole.Admin).DeleteAsync(kept.Handle);
        Assert.True(proxy.Services.GetRequiredService<AuditLog>().Verify().Intact);
    }

    [Fact]
    public async Task WithTheLogsPathTakenByADirectory_RequestsAreRefused()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var log = Path.Combine(proxy.Root, "data", "audit", "audit.log");
        File.Move(log, log + ".aside");
        Directory.CreateDirectory(log);

        await AssertRefusedAsync(proxy, () => proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build())));
        await AssertRefusedAsync(proxy, async () => await Refusal(await proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/checkpoint"))));
    }

    [Fact]
    public async Task AnUploadWhoseOwnEntryCannotBeWritten_LeavesNothingBehind()
    {
        // The permit is recorded before the body arrives; the log goes before the upload's own entry is written.
        await using var proxy = await ProxyHost.StartAsync();
        var audit = Path.Combine(proxy.Root, "data", "audit");
        var file = new DicomFileBuilder().Patient("HALF-1", "Half^Done").PixelData(64 * 1024).Build();
        var released = new TaskCompletionSource();
        using var content = new StreamContent(new HeldStream(file, file.Length / 2, released.Task));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        var sending = proxy.Client(ProxyRole.Producer).SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/records") { Content = content });

        await FileEvents.WaitUntilAsync(
            audit,
            () => Task.FromResult(File.ReadAllLines(Path.Combine(audit, "audit.log")).Any(l => l.Contains("\"action\":\"Upload\"", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(30),
            () => "the upload's permit never reached the audit log");
        Directory.Move(audit, audit + ".aside");
        File.WriteAllText(audit, "not a directory");
        released.SetResult();
        using var response = await sending;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("urn:trustedproxy:problem:audit-unavailable", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["type"]!.GetValue<string>());
        Assert.Equal(0, await proxy.Services.GetRequiredService<RecordIndex>().CountAsync());
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging")));
        Assert.Empty(await proxy.CloudObjectsAsync());

        // The permit stays recorded (in both logs) with no upload after it: decided, not done.
        Assert.Contains(await proxy.Services.GetRequiredService<DecisionLog>().ReadAsync(0, 10_000), d => d.Action == nameof(ProxyAction.Upload));
        File.Delete(audit);
        Directory.Move(audit + ".aside", audit);
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(audit, "audit.log")), l => l.Contains("\"kind\":\"upload\"", StringComparison.Ordinal));
    }

    private static async Task AssertRefusedAsync(ProxyHost proxy, Func<Task> request)
    {
        var records = await proxy.Services.GetRequiredService<RecordIndex>().CountAsync();
        var decisions = (await proxy.Services.GetRequiredService<DecisionLog>().ReadAsync(0, 10_000)).Count;
        var objects = (await proxy.CloudObjectsAsync()).Count;

        var refused = await Assert.ThrowsAsync<TrustedProxyException>(request);

        Assert.Equal(503, refused.Status);
        Assert.Equal("urn:trustedproxy:problem:audit-unavailable", refused.ProblemType);
        Assert.Equal(records, await proxy.Services.GetRequiredService<RecordIndex>().CountAsync());
        Assert.Equal(decisions, (await proxy.Services.GetRequiredService<DecisionLog>().ReadAsync(0, 10_000)).Count);
        Assert.Equal(objects, (await proxy.CloudObjectsAsync()).Count);
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging")));
    }

    private static async Task Refusal(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            throw new TrustedProxyException((int)response.StatusCode, problem["type"]?.GetValue<string>(), problem["title"]!.GetValue<string>(), problem["detail"]!.GetValue<string>());
        }
    }

    /// <summary>A request body that sends its first part, then waits to be released before sending the rest.</summary>
    private sealed class HeldStream(byte[] content, int holdAt, Task release) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => content.Length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position == holdAt)
            {
                await release.WaitAsync(cancellationToken);
            }

            var end = _position < holdAt ? holdAt : content.Length;
            var count = Math.Min(buffer.Length, end - _position);
            content.AsMemory(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
