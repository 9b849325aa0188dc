using System.Runtime.CompilerServices;
using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Storage;

/// <summary>
/// The embedded default backend: one file per object in a directory. Writes go to a temporary
/// file that is flushed to disk and then linked into place without overwriting (create-new), so a
/// reader never sees a partial object, a crash never leaves one under a real name, and a name is
/// never written twice.
/// </summary>
internal sealed class FileSystemObjectStore : IObjectStore
{
    public const string ProviderName = "filesystem";
    private const string TemporarySuffix = ".partial";

    private readonly string _root;

    public FileSystemObjectStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
        foreach (var leftover in Directory.EnumerateFiles(_root, "*" + TemporarySuffix))
        {
            File.Delete(leftover);
        }
    }

    public string Name => ProviderName;

    public string Root => _root;

    public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        try
        {
            return await PutAsync(name, content, length, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A full or unmounted disk is this backend's outage.
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    private async Task<PutResult> PutAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        // No existence check first: the link without overwrite below is the create-new condition, so
        // every write does the same work whether or not the name is taken (as on the cloud backends,
        // where a check would be an extra request the cloud sees).
        var path = PathOf(name);
        var temporary = Path.Combine(_root, $"{name}.{Guid.NewGuid():N}{TemporarySuffix}");
        try
        {
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                if (file.Length != length)
                {
                    throw new IOException($"expected {length} bytes for object {name}, received {file.Length}");
                }

                file.Flush(flushToDisk: true);
            }

            try
            {
                File.Move(temporary, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                return PutResult.AlreadyExists;
            }

            return PutResult.Created;
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        try
        {
            Stream stream = new FileStream(PathOf(name), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return Task.FromResult(stream);
        }
        catch (FileNotFoundException)
        {
            throw new StoredObjectNotFoundException(name);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new BackendUnavailableException(ProviderName, ex);
        }
    }

    public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
    {
        var path = PathOf(name);
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }

        File.Delete(path);
        return Task.FromResult(true);
    }

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => Task.FromResult(File.Exists(PathOf(name)));

    public async IAsyncEnumerable<StoredObject> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        foreach (var file in new DirectoryInfo(_root).EnumerateFiles())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!ObjectName.TryParse(file.Name, out var name))
            {
                continue;
            }

            // An object deleted between the directory listing and its size (a deletion sweep running
            // beside the listing) is not there any more: left out, as a cloud's listing would.
            long length;
            try
            {
                length = file.Length;
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            yield return new StoredObject(name, length);
        }
    }

    private string PathOf(ObjectName name) => Path.Combine(_root, name.ToString());
}

/// <summary>Creates the filesystem backend from <c>TrustedProxy:Storage:filesystem</c>.</summary>
internal sealed class FileSystemObjectStoreProvider : IObjectStoreProvider
{
    public string Name => FileSystemObjectStore.ProviderName;

    public Task<IObjectStore> CreateAsync(IConfigurationSection section, string contentRoot, CancellationToken cancellationToken)
    {
        var root = section["Root"];
        if (string.IsNullOrWhiteSpace(root))
        {
            throw new InvalidOperationException("TrustedProxy:Storage:filesystem:Root is not set");
        }

        return Task.FromResult<IObjectStore>(new FileSystemObjectStore(Path.Combine(contentRoot, root)));
    }
}
