using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage.AzureBlob;

/// <summary>
/// Azure Blob Storage as a backend: one block blob per object in one container. Put-if-absent is
/// the service's own conditional write (<c>If-None-Match: *</c>), so it is atomic.
/// </summary>
internal sealed class AzureBlobObjectStore(BlobContainerClient container) : IObjectStore
{
    public const string ProviderName = "azure-blob";

    public string Name => ProviderName;

    public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        try
        {
            await container.GetBlobClient(name.ToString()).UploadAsync(
                content,
                new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } },
                cancellationToken).ConfigureAwait(false);
            return PutResult.Created;
        }
        catch (RequestFailedException ex) when (ex.Status is 409 or 412)
        {
            return PutResult.AlreadyExists;
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
            var response = await container.GetBlobClient(name.ToString()).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Value;
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

    private static bool IsTransient(Exception ex) =>
        ex is RequestFailedException { Status: 0 or 408 or 429 or >= 500 } or HttpRequestException or IOException or TaskCanceledException { InnerException: TimeoutException } or AggregateException;
}

/// <summary>
/// Creates the Azure Blob backend from <c>TrustedProxy:Storage:azure-blob</c>:
/// <c>ConnectionString</c> and <c>Container</c> (created if missing).
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

        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }

        var options = new BlobClientOptions();
        options.Retry.MaxRetries = int.TryParse(section["MaxRetries"], out var retries) ? retries : 3;
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(int.TryParse(section["NetworkTimeoutSeconds"], out var seconds) ? seconds : 100);
        var container = new BlobContainerClient(connectionString, containerName, options);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return new AzureBlobObjectStore(container);
    }
}
