using System.Net;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage.S3;

/// <summary>
/// S3 (or an S3-compatible store) as a backend: one object per record in one bucket.
/// Put-if-absent is one conditional PUT with <c>If-None-Match: *</c>, which S3 honours atomically
/// since 2024, so every write, real or cover, is the same single request on the wire. Stores that
/// ignore the header (older emulators) can be given a HEAD first with <c>HeadBeforePut</c>, which
/// then precedes every write alike. Only the proxy writes, and names are 128-bit random, so the
/// HEAD-then-PUT window can only ever race with the proxy's own retry.
/// </summary>
internal sealed class S3ObjectStore(IAmazonS3 client, string bucket, bool headBeforePut = false) : IObjectStore
{
    public const string ProviderName = "s3";

    public string Name => ProviderName;

    public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        try
        {
            if (headBeforePut && await ExistsAsync(name, cancellationToken).ConfigureAwait(false))
            {
                return PutResult.AlreadyExists;
            }

            var request = new PutObjectRequest
            {
                BucketName = bucket,
                Key = name.ToString(),
                InputStream = content,
                AutoCloseStream = false,
                ContentType = "application/octet-stream",
                // aws-chunked bodies are stored verbatim (signatures included) by some S3-compatible stores.
                UseChunkEncoding = false,
            };
            request.Headers.ContentLength = length;
            request.Headers["If-None-Match"] = "*";
            await client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
            return PutResult.Created;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict)
        {
            return PutResult.AlreadyExists;
        }
        catch (AmazonServiceException ex) when (IsRefusal(ex))
        {
            throw Refused(ex);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    public async Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.GetObjectAsync(bucket, name.ToString(), cancellationToken).ConfigureAwait(false);
            return response.ResponseStream;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            throw new StoredObjectNotFoundException(name);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    /// <remarks>
    /// S3's DeleteObject answers 204 whether or not the object existed, so without <c>HeadBeforePut</c>
    /// this is one DELETE and reports true; with it, a HEAD precedes every delete alike and a missing
    /// object reports false. No caller in the proxy depends on the answer.
    /// </remarks>
    public async Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
    {
        try
        {
            if (headBeforePut && !await ExistsAsync(name, cancellationToken).ConfigureAwait(false))
            {
                return false;
            }

            await client.DeleteObjectAsync(bucket, name.ToString(), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (AmazonServiceException ex) when (IsRefusal(ex))
        {
            throw Refused(ex);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    public async Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken)
    {
        try
        {
            await client.GetObjectMetadataAsync(bucket, name.ToString(), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
        catch (AmazonServiceException ex) when (IsRefusal(ex))
        {
            throw Refused(ex);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    public async IAsyncEnumerable<StoredObject> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? continuation = null;
        do
        {
            ListObjectsV2Response page;
            try
            {
                page = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, ContinuationToken = continuation }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex))
            {
                throw new BackendUnavailableException(ProviderName, ex);
            }

            foreach (var item in page.S3Objects ?? [])
            {
                if (ObjectName.TryParse(item.Key, out var name))
                {
                    yield return new StoredObject(name, item.Size);
                }
            }

            continuation = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (continuation is not null);
    }

    /// <summary>A permanent refusal: a 4xx other than not-found, conflict, failed precondition, timeout or throttling.</summary>
    private static bool IsRefusal(AmazonServiceException ex) =>
        (int)ex.StatusCode is >= 400 and < 500
        && ex.StatusCode is not (HttpStatusCode.NotFound or HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed or HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests);

    // A HEAD's error has no body, hence no code: the status stands in for it.
    private static BackendRefusedException Refused(AmazonServiceException ex) =>
        new(ProviderName, (int)ex.StatusCode, string.IsNullOrEmpty(ex.ErrorCode) ? ex.StatusCode.ToString() : ex.ErrorCode, ex);

    private static bool IsTransient(Exception ex) =>
        ex is AmazonServiceException { StatusCode: HttpStatusCode.InternalServerError or HttpStatusCode.ServiceUnavailable or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout }
            or AmazonClientException or HttpRequestException or IOException or WebException;
}

/// <summary>
/// Creates the S3 backend from <c>TrustedProxy:Storage:s3</c>: <c>Bucket</c> (created if missing),
/// and either <c>Region</c> (AWS) or <c>ServiceUrl</c> (an S3-compatible store), with
/// <c>AccessKey</c>/<c>SecretKey</c> or the SDK's default credential chain; <c>HeadBeforePut</c>
/// (default false) for stores that ignore <c>If-None-Match</c>.
/// </summary>
internal sealed class S3ObjectStoreProvider : IObjectStoreProvider
{
    public string Name => S3ObjectStore.ProviderName;

    public async Task<IObjectStore> CreateAsync(IConfigurationSection section, string contentRoot, CancellationToken cancellationToken)
    {
        var bucket = section["Bucket"];
        var serviceUrl = section["ServiceUrl"];
        var region = section["Region"];
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(bucket))
        {
            errors.Add("TrustedProxy:Storage:s3:Bucket is not set");
        }

        if (string.IsNullOrWhiteSpace(serviceUrl) && string.IsNullOrWhiteSpace(region))
        {
            errors.Add("TrustedProxy:Storage:s3 needs Region (AWS) or ServiceUrl (S3-compatible store)");
        }

        var headBeforePut = false;
        if (section["HeadBeforePut"] is { Length: > 0 } head && !bool.TryParse(head, out headBeforePut))
        {
            errors.Add($"TrustedProxy:Storage:s3:HeadBeforePut must be true or false, not '{head}'");
        }

        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }

        var config = new AmazonS3Config
        {
            HttpClientFactory = new UntracedHttpClientFactory(),
            ForcePathStyle = bool.TryParse(section["ForcePathStyle"], out var pathStyle) ? pathStyle : !string.IsNullOrWhiteSpace(serviceUrl),
            MaxErrorRetry = int.TryParse(section["MaxRetries"], out var retries) ? retries : 3,
        };
        if (!string.IsNullOrWhiteSpace(serviceUrl))
        {
            config.ServiceURL = serviceUrl;
            config.AuthenticationRegion = region ?? "us-east-1";
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }

        var accessKey = section["AccessKey"];
        var secretKey = section["SecretKey"];
        IAmazonS3 client = !string.IsNullOrEmpty(accessKey) && !string.IsNullOrEmpty(secretKey)
            ? new AmazonS3Client(new BasicAWSCredentials(accessKey, secretKey), config)
            : new AmazonS3Client(config);

        try
        {
            await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists")
        {
        }

        return new S3ObjectStore(client, bucket!, headBeforePut);
    }
}

/// <summary>
/// The S3 client's HTTP stack with nothing of the proxy's own requests on it: no
/// <c>traceparent</c>/<c>tracestate</c>/<c>baggage</c>/<c>Request-Id</c>/<c>Correlation-Context</c>,
/// which .NET's handler otherwise adds from the current <see cref="System.Diagnostics.Activity"/> and
/// which would let the cloud tie a write to the upload (or the cover schedule) that caused it.
/// </summary>
internal sealed class UntracedHttpClientFactory : HttpClientFactory
{
    // One handler for every client the SDK asks for, so connections are pooled whatever the SDK's
    // caching choice; the clients never dispose it.
    private readonly SocketsHttpHandler _handler = new()
    {
        ActivityHeadersPropagator = null,
        UseCookies = false,
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };

    public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
        new(_handler, disposeHandler: false) { Timeout = clientConfig.Timeout ?? TimeSpan.FromSeconds(100) };
}
