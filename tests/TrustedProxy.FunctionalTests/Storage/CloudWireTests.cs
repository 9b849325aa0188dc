using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Extensions.Configuration;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;
using TrustedProxy.Storage.AzureBlob;
using TrustedProxy.Storage.S3;
using TrustedProxy.Testing.Storage;

namespace TrustedProxy.FunctionalTests.Storage;

/// <summary>
/// What the cloud sees of the stores' requests, recorded by a verifying front before a real
/// emulator: one request shape for every write, nothing of the proxy's own request context, what
/// the SDK hashed is what it sent and what is stored, and permanent refusals told apart from outages.
/// </summary>
public abstract class CloudWireTests : IAsyncLifetime
{
    // Every header .NET and the SDKs know for carrying a request's context from one hop to the next.
    private static readonly string[] ContextHeaders = ["traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context"];
    private const string SourceName = "TrustedProxy.FunctionalTests.CloudWire";
    private static readonly ActivitySource Source = new(SourceName);

    protected VerifyingS3Front Front { get; private set; } = null!;

    protected IObjectStore Store { get; private set; } = null!;

    /// <summary>The header in which this backend's SDK declares the digest of the body it sends.</summary>
    protected abstract string DigestHeader { get; }

    /// <summary>The declared digest of a body, in the form <see cref="DigestHeader"/> carries it.</summary>
    protected abstract string Digest(byte[] body);

    protected abstract Task<VerifyingS3Front> StartFrontAsync();

    protected abstract Task<IObjectStore> CreateStoreAsync(VerifyingS3Front front);

    protected virtual Task StopFrontAsync(VerifyingS3Front front) => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        Front = await StartFrontAsync();
        Store = await CreateStoreAsync(Front);
        Front.Clear();
    }

    public async Task DisposeAsync()
    {
        Front.Refuse = null;
        await StopFrontAsync(Front);
    }

    [Fact]
    public async Task EveryWrite_IsOneConditionalPut_WithTheSameHeaderNames_WhateverTheBody()
    {
        var real = RandomNumberGenerator.GetBytes(131_072);
        var cover = new byte[131_072];
        var first = ObjectName.NewRandom();
        var second = ObjectName.NewRandom();

        await Store.PutIfAbsentAsync(first, new MemoryStream(real), real.Length, CancellationToken.None);
        var afterFirst = Front.Requests;
        await Store.PutIfAbsentAsync(second, new MemoryStream(cover), cover.Length, CancellationToken.None);
        var afterSecond = Front.Requests.Skip(afterFirst.Count).ToList();

        // One request per write, and no HEAD (or anything else) before it.
        var one = Assert.Single(afterFirst);
        var two = Assert.Single(afterSecond);
        Assert.Equal("PUT", one.Method);
        Assert.Equal("*", one.Header("If-None-Match"));
        Assert.Equal(one.Method, two.Method);
        Assert.Equal(one.Query, two.Query);
        Assert.Equal(one.HeaderNames.Order(), two.HeaderNames.Order());
        Assert.Equal(Digest(real), one.Header(DigestHeader));
        Assert.Equal(Digest(cover), two.Header(DigestHeader));
    }

    [Fact]
    public async Task NoRequestContext_ReachesTheCloud_FromAnyOperation()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        using (var upload = Source.StartActivity("upload", ActivityKind.Server))
        {
            Assert.NotNull(upload);
            Assert.Equal(ActivityIdFormat.W3C, upload.IdFormat);
            upload.TraceStateString = "hospital=ward7";
            upload.SetBaggage("patient", "PAT-1");

            var name = ObjectName.NewRandom();
            var body = RandomNumberGenerator.GetBytes(10_000);
            Assert.Equal(PutResult.Created, await Store.PutIfAbsentAsync(name, new MemoryStream(body), body.Length, CancellationToken.None));
            Assert.Equal(PutResult.AlreadyExists, await Store.PutIfAbsentAsync(name, new MemoryStream(body), body.Length, CancellationToken.None));
            await using (var read = await Store.OpenReadAsync(name, CancellationToken.None))
            {
                await read.CopyToAsync(Stream.Null);
            }

            Assert.True(await Store.ExistsAsync(name, CancellationToken.None));
            await foreach (var _ in Store.ListAsync(CancellationToken.None))
            {
            }

            await Store.DeleteAsync(name, CancellationToken.None);

            var requests = Front.Requests;
            Assert.True(requests.Count >= 6, $"only {requests.Count} requests recorded");
            foreach (var request in requests)
            {
                foreach (var header in ContextHeaders)
                {
                    Assert.True(request.Header(header) is null, $"{request} carried {header}: {request.Header(header)}");
                }
            }

            // The control: an ordinary HttpClient in the same activity does send it, so the absence above
            // is the stores' doing and not a listener that failed to start an activity.
            using var plain = new HttpClient();
            using var control = await plain.GetAsync(new Uri(Front.ServiceUrl + "/control"));
            Assert.Contains(upload.TraceId.ToHexString(), Front.Requests[^1].Header("traceparent") ?? string.Empty, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ADummyFromTheObjectMask_IsStoredAsTheBytesTheSdkHashedAndSent()
    {
        // The proxy's own dummy stream (ObjectMask): seekable, the same bytes on every pass, as an SDK
        // that hashes a body, rewinds and sends it (or retries) needs.
        using var mask = new ObjectMask(RandomNumberGenerator.GetBytes(32));
        var name = ObjectName.NewRandom();
        const int Length = 131_072;
        byte[] expected;
        await using (var pass = mask.Dummy(name, Length))
        {
            using var copy = new MemoryStream();
            await pass.CopyToAsync(copy);
            expected = copy.ToArray();
        }

        await using (var dummy = mask.Dummy(name, Length))
        {
            Assert.Equal(PutResult.Created, await Store.PutIfAbsentAsync(name, dummy, Length, CancellationToken.None));
        }

        var put = Assert.Single(Front.Requests, r => r.Method == "PUT" && r.Key.EndsWith(name.ToString(), StringComparison.Ordinal));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected)), put.BodySha256);
        Assert.Equal(Digest(expected), put.Header(DigestHeader));
        Assert.Equal(expected.AsSpan(0, 64).ToArray(), put.BodyPrefix);
        await using var stored = await Store.OpenReadAsync(name, CancellationToken.None);
        using var back = new MemoryStream();
        await stored.CopyToAsync(back);
        Assert.True(expected.AsSpan().SequenceEqual(back.ToArray()), "the stored dummy differs from the bytes the stream gave");
    }

    [Theory]
    [InlineData(400, "BadDigest")]
    [InlineData(400, "XAmzContentSHA256Mismatch")]
    [InlineData(403, "AccessDenied")]
    [InlineData(413, "EntityTooLarge")]
    public async Task APutTheCloudRefusesForGood_ThrowsBackendRefused_WithTheCloudsCode(int status, string code)
    {
        var name = ObjectName.NewRandom();
        Front.Refuse = r => r.Key.EndsWith(name.ToString(), StringComparison.Ordinal) ? (status, code) : null;

        var error = await Assert.ThrowsAsync<BackendRefusedException>(() => Store.PutIfAbsentAsync(name, new MemoryStream([1, 2, 3]), 3, CancellationToken.None));

        Assert.Equal(status, error.Status);
        Assert.Equal(code, error.Code);
        Assert.Equal(Store.Name, error.Backend);
        Front.Refuse = null;
        Assert.False(await Store.ExistsAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task ADeleteTheCloudRefusesForGood_ThrowsBackendRefused()
    {
        var name = ObjectName.NewRandom();
        await Store.PutIfAbsentAsync(name, new MemoryStream([1]), 1, CancellationToken.None);
        Front.Refuse = r => r.Method == "DELETE" ? (403, "AccessDenied") : null;

        var error = await Assert.ThrowsAsync<BackendRefusedException>(() => Store.DeleteAsync(name, CancellationToken.None));

        Assert.Equal(403, error.Status);
        Assert.Equal("AccessDenied", error.Code);
        Front.Refuse = null;
        Assert.True(await Store.ExistsAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task APutTheCloudCannotServeNow_ThrowsBackendUnavailable_NotRefused()
    {
        var name = ObjectName.NewRandom();
        Front.Refuse = r => r.Key.EndsWith(name.ToString(), StringComparison.Ordinal) ? (503, "ServiceUnavailable") : null;

        var error = await Assert.ThrowsAsync<BackendUnavailableException>(() => Store.PutIfAbsentAsync(name, new MemoryStream([1, 2, 3]), 3, CancellationToken.None));

        Assert.Equal(Store.Name, error.Backend);
        Assert.All(Front.Requests, r => Assert.Equal(503, r.Status));
    }

    protected static IReadOnlyDictionary<string, string?> Section(BackendSettings backend, string prefix) =>
        backend.Settings.ToDictionary(p => p.Key.Replace(prefix, "backend", StringComparison.Ordinal), p => p.Value);

    protected static Task<IObjectStore> CreateAsync(IObjectStoreProvider provider, IReadOnlyDictionary<string, string?> settings) =>
        provider.CreateAsync(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("backend"), Path.GetTempPath(), CancellationToken.None);
}

[Collection("s3rver")]
public sealed class S3CloudWireTests(S3rverFixture s3rver) : CloudWireTests
{
    protected override string DigestHeader => "x-amz-content-sha256";

    protected override string Digest(byte[] body) => Convert.ToHexStringLower(SHA256.HashData(body));

    protected override Task<VerifyingS3Front> StartFrontAsync() => Task.FromResult(s3rver.Front);

    protected override Task<IObjectStore> CreateStoreAsync(VerifyingS3Front front) =>
        CreateAsync(new S3ObjectStoreProvider(), Section(front.Settings(), "TrustedProxy:Storage:s3"));

    /// <summary>
    /// The bug the front exists to catch: a body stream that gives different bytes on each pass. The
    /// SDK hashes one pass and sends another; AWS (and the front) refuse it, and the store says so as
    /// a refusal, not an outage to retry for ever.
    /// </summary>
    [Fact]
    public async Task ABodyThatChangesBetweenHashAndSend_IsRefusedAsAPayloadHashMismatch()
    {
        var name = ObjectName.NewRandom();

        var error = await Assert.ThrowsAsync<BackendRefusedException>(() => Store.PutIfAbsentAsync(name, new FreshBytesEachPassStream(4096), 4096, CancellationToken.None));

        Assert.Equal(400, error.Status);
        Assert.Equal("XAmzContentSHA256Mismatch", error.Code);
        var put = Assert.Single(Front.Requests, r => r.Method == "PUT");
        Assert.Equal("XAmzContentSHA256Mismatch", put.FrontError);
        Assert.NotEqual(put.BodySha256, put.Header("x-amz-content-sha256"));
        Assert.False(await Store.ExistsAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task WithHeadBeforePut_EveryWriteIsAHeadThenAPut()
    {
        var settings = new Dictionary<string, string?>(Section(Front.Settings(), "TrustedProxy:Storage:s3")) { ["backend:HeadBeforePut"] = "true" };
        var store = await CreateAsync(new S3ObjectStoreProvider(), settings);
        Front.Clear();
        var name = ObjectName.NewRandom();

        Assert.Equal(PutResult.Created, await store.PutIfAbsentAsync(name, new MemoryStream([1]), 1, CancellationToken.None));
        Assert.Equal(PutResult.AlreadyExists, await store.PutIfAbsentAsync(name, new MemoryStream([2]), 1, CancellationToken.None));
        Assert.False(await store.DeleteAsync(ObjectName.NewRandom(), CancellationToken.None));

        Assert.Equal(["HEAD", "PUT", "HEAD", "HEAD"], Front.Requests.Select(r => r.Method));
    }
}

[Collection("azurite")]
public sealed class AzureCloudWireTests(AzuriteFixture azurite) : CloudWireTests
{
    protected override string DigestHeader => "Content-MD5";

    protected override string Digest(byte[] body) => Convert.ToBase64String(MD5.HashData(body));

    protected override Task<VerifyingS3Front> StartFrontAsync() => VerifyingS3Front.StartBeforeAzuriteAsync(azurite.Emulator);

    protected override Task<IObjectStore> CreateStoreAsync(VerifyingS3Front front)
    {
        var settings = new Dictionary<string, string?>(Section(BackendSettings.Azurite(azurite.Emulator), "TrustedProxy:Storage:azure-blob"))
        {
            ["backend:ConnectionString"] = front.AzuriteConnectionString,
        };
        return CreateAsync(new AzureBlobObjectStoreProvider(), settings);
    }

    protected override async Task StopFrontAsync(VerifyingS3Front front) => await front.DisposeAsync();

    [Fact]
    public async Task WithHeadBeforePut_EveryWriteIsAHeadThenAPut()
    {
        var settings = new Dictionary<string, string?>(Section(BackendSettings.Azurite(azurite.Emulator), "TrustedProxy:Storage:azure-blob"))
        {
            ["backend:ConnectionString"] = Front.AzuriteConnectionString,
            ["backend:HeadBeforePut"] = "true",
        };
        var store = await CreateAsync(new AzureBlobObjectStoreProvider(), settings);
        Front.Clear();
        var name = ObjectName.NewRandom();

        Assert.Equal(PutResult.Created, await store.PutIfAbsentAsync(name, new MemoryStream([1]), 1, CancellationToken.None));
        Assert.Equal(PutResult.AlreadyExists, await store.PutIfAbsentAsync(name, new MemoryStream([2]), 1, CancellationToken.None));

        Assert.Equal(["HEAD", "PUT", "HEAD"], Front.Requests.Select(r => r.Method));
    }
}

/// <summary>The filesystem backend has no wire; what it stores of a dummy is still what the stream gave.</summary>
public sealed class FileSystemDummyTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public async Task ADummyFromTheObjectMask_IsStoredAsTheBytesItGave()
    {
        var store = new FileSystemObjectStore(_directory.Path);
        using var mask = new ObjectMask(RandomNumberGenerator.GetBytes(32));
        var name = ObjectName.NewRandom();
        using var expected = new MemoryStream();
        await using (var pass = mask.Dummy(name, 131_072))
        {
            await pass.CopyToAsync(expected);
        }

        await using (var dummy = mask.Dummy(name, 131_072))
        {
            Assert.Equal(PutResult.Created, await store.PutIfAbsentAsync(name, dummy, 131_072, CancellationToken.None));
        }

        Assert.Equal(expected.ToArray(), await File.ReadAllBytesAsync(Path.Combine(_directory.Path, name.ToString())));
        await using (var again = mask.Dummy(name, 131_072))
        {
            Assert.Equal(PutResult.AlreadyExists, await store.PutIfAbsentAsync(name, again, 131_072, CancellationToken.None));
        }
    }

    public void Dispose() => _directory.Dispose();
}

/// <summary>A seekable body that gives fresh random bytes on every read: what a broken dummy stream did.</summary>
internal sealed class FreshBytesEachPassStream(long length) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get; set; }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = (int)Math.Min(count, length - Position);
        if (n <= 0)
        {
            return 0;
        }

        RandomNumberGenerator.Fill(buffer.AsSpan(offset, n));
        Position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => Position + offset,
        _ => length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>The stores' wire options are checked at start-up, every error at once, naming the key.</summary>
public sealed class StorageWireOptionsTests
{
    [Fact]
    public async Task AnInvalidHeadBeforePut_FailsAtStartUp_NamingIt()
    {
        var s3 = await Assert.ThrowsAsync<InvalidOperationException>(() => Create(new S3ObjectStoreProvider(), new()
        {
            ["backend:ServiceUrl"] = "http://127.0.0.1:1",
            ["backend:Bucket"] = "b",
            ["backend:HeadBeforePut"] = "sometimes",
        }));
        Assert.Contains("TrustedProxy:Storage:s3:HeadBeforePut", s3.Message, StringComparison.Ordinal);

        var azure = await Assert.ThrowsAsync<InvalidOperationException>(() => Create(new AzureBlobObjectStoreProvider(), new()
        {
            ["backend:ConnectionString"] = "UseDevelopmentStorage=true",
            ["backend:HeadBeforePut"] = "sometimes",
            ["backend:TransactionalMd5"] = "maybe",
        }));
        Assert.Contains("TrustedProxy:Storage:azure-blob:Container", azure.Message, StringComparison.Ordinal);
        Assert.Contains("TrustedProxy:Storage:azure-blob:HeadBeforePut", azure.Message, StringComparison.Ordinal);
        Assert.Contains("TrustedProxy:Storage:azure-blob:TransactionalMd5", azure.Message, StringComparison.Ordinal);
    }

    private static Task<IObjectStore> Create(IObjectStoreProvider provider, Dictionary<string, string?> settings) =>
        provider.CreateAsync(new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("backend"), Path.GetTempPath(), CancellationToken.None);
}
