using System.Runtime.CompilerServices;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage.AzureBlob;

/// <summary>
/// Azure Blob Storage as a backend: one block blob per object in one container. Put-if-absent is
/// the service's own conditional write (<c>If-None-Match: *</c>), so it is atomic and every write,
/// real or cover, is one Put Blob request; <c>HeadBeforePut</c> adds a Get Blob Properties before
/// every write alike, for stores that ignore the condition.
/// </summary>
internal sealed class AzureBlobObjectStore(BlobContainerClient container, bool headBeforePut = false) : IObjectStore
{
    public const string ProviderName = "azure-blob";

    public string Name => ProviderName;

    public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        try
        {
            var blob = container.GetBlobClient(name.ToString());
            if (headBeforePut && (await blob.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value)
            {
                return PutResult.AlreadyExists;
            }

            await blob.UploadAsync(
                content,
                new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } },
                cancellationToken).ConfigureAwait(false);
            return PutResult.Created;
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            return PutResult.AlreadyExists;
        }
        catch (RequestFailedException ex) when (IsRefusal(ex))
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
            var response = await container.GetBlobClient(name.ToString()).DownloadStreamingAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Value.Content;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new StoredObjectNotFoundException(name);
        }
        catch (Exception ex) when (IsTransient(ex))
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    public async Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
    {
        try
        {
            // One Delete Blob request whether or not the blob is there: the service's 404 is the answer.
            var response = await container.GetBlobClient(name.ToString()).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Value;
        }
        catch (RequestFailedException ex) when (IsRefusal(ex))
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
            return (await container.GetBlobClient(name.ToString()).ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException ex) when (IsRefusal(ex))
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
        await foreach (var blob in container.GetBlobsAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (ObjectName.TryParse(blob.Name, out var name))
            {
                yield return new StoredObject(name, blob.Properties.ContentLength ?? 0);
            }
        }
    }

    /// <summary>A permanent refusal: a 4xx other than not-found, conflict, failed precondition, timeout or throttling.</summary>
    private static bool IsRefusal(RequestFailedException ex) => ex.Status is >= 400 and < 500 and not (404 or 409 or 412 or 408 or 429);

    private static BackendRefusedException Refused(RequestFailedException ex) =>
        new(ProviderName, ex.Status, string.IsNullOrEmpty(ex.ErrorCode) ? ex.Status.ToString(System.Globalization.CultureInfo.InvariantCulture) : ex.ErrorCode, ex);

    private static bool IsTransient(Exception ex) =>
        ex is RequestFailedException { Status: 0 or 408 or 429 or >= 500 } or HttpRequestException or IOException or TaskCanceledException { InnerException: TimeoutException } or AggregateException;
}

/// <summary>
/// Creates the Azure Blob backend from <c>TrustedProxy:Storage:azure-blob</c>:
/// <c>ConnectionString</c> and <c>Container</c> (created if missing); <c>TransactionalMd5</c>
/// (default true: every upload carries <c>Content-MD5</c>, which the service checks) and
/// <c>HeadBeforePut</c> (default false).
/// </summary>
internal sealed class AzureBlobObjectStoreProvider : IObjectStoreProvider
{
    public string Name => AzureBlobObjectStore.ProviderName;

    public async Task<IObjectStore> CreateAsync(IConfigurationSection section, string contentRoot, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var connectionString = section["ConnectionString"];
        var containerName = section["Container"];
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            errors.Add("TrustedProxy:Storage:azure-blob:ConnectionString is not set");
        }

        if (string.IsNullOrWhiteSpace(containerName))
        {
            errors.Add("TrustedProxy:Storage:azure-blob:Container is not set");
        }

        var headBeforePut = Flag(section, "HeadBeforePut", false, errors);
        var transactionalMd5 = Flag(section, "TransactionalMd5", true, errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }

        var options = new BlobClientOptions
        {
            // Nothing of the proxy's own requests reaches the cloud: no activities of the SDK's own, no
            // trace headers from .NET's handler (the transport below), and the policy added below strips
            // what the pipeline still copies from the current activity even with tracing off.
            Diagnostics = { IsDistributedTracingEnabled = false },
            Transport = new HttpClientTransport(new SocketsHttpHandler { ActivityHeadersPropagator = null, UseCookies = false, AllowAutoRedirect = false }),
        };
        options.AddPolicy(new NoRequestContextPolicy(), HttpPipelinePosition.BeforeTransport);
        if (transactionalMd5)
        {
            options.TransferValidation.Upload.ChecksumAlgorithm = StorageChecksumAlgorithm.MD5;
        }

        options.Retry.MaxRetries = int.TryParse(section["MaxRetries"], out var retries) ? retries : 3;
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(int.TryParse(section["NetworkTimeoutSeconds"], out var seconds) ? seconds : 100);
        var container = new BlobContainerClient(connectionString, containerName, options);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return new AzureBlobObjectStore(container, headBeforePut);
    }

    private static bool Flag(IConfigurationSection section, string key, bool fallback, List<string> errors)
    {
        if (section[key] is not { Length: > 0 } text)
        {
            return fallback;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        errors.Add($"TrustedProxy:Storage:azure-blob:{key} must be true or false, not '{text}'");
        return fallback;
    }
}

/// <summary>
/// Removes every header that carries a request's context from hop to hop. Azure.Core copies the
/// current <see cref="System.Diagnostics.Activity"/>'s id into <c>traceparent</c> even with
/// distributed tracing off (seen on the wire with 12.30.1), which would let the cloud tie a write to
/// the upload or the cover schedule that caused it. Runs last, after anything that adds them.
/// </summary>
internal sealed class NoRequestContextPolicy : HttpPipelineSynchronousPolicy
{
    private static readonly string[] Headers = ["traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context"];

    public override void OnSendingRequest(HttpMessage message)
    {
        foreach (var header in Headers)
        {
            message.Request.Headers.Remove(header);
        }
    }
}
