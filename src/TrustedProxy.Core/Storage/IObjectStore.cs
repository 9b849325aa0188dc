namespace TrustedProxy.Storage;

/// <summary>
/// The cloud as the proxy sees it: a dumb store of opaque objects under proxy-chosen names.
/// Implementations must be safe for concurrent use. Everything handed to a store is already
/// ciphertext; a store never sees a key or a record handle.
/// </summary>
public interface IObjectStore
{
    /// <summary>The configuration name of this backend (for example <c>filesystem</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Stores <paramref name="content"/> under <paramref name="name"/> unless an object of that name exists.
    /// Idempotent: retrying after a lost response reports <see cref="PutResult.AlreadyExists"/>.
    /// </summary>
    Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken);

    /// <summary>Opens an object for reading; throws <see cref="StoredObjectNotFoundException"/> if it does not exist.</summary>
    Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes an object; idempotent. Returns false if the backend said it did not exist; a backend
    /// whose delete answers alike either way (S3, unless configured to HEAD first) returns true, as
    /// an extra request only to learn this would show on the wire.
    /// </summary>
    Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken);

    /// <summary>Whether an object exists.</summary>
    Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken);

    /// <summary>Every object in the store, in the backend's order.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken);
}

/// <summary>The outcome of a conditional put.</summary>
public enum PutResult
{
    /// <summary>The object was written.</summary>
    Created,

    /// <summary>An object of that name was already there; nothing was written.</summary>
    AlreadyExists,
}

/// <summary>An object as listed by a backend.</summary>
public sealed record StoredObject(ObjectName Name, long Length);

/// <summary>The named object does not exist in the backend.</summary>
public sealed class StoredObjectNotFoundException(ObjectName name)
    : Exception($"object {name} does not exist in the backend")
{
    /// <summary>The missing object's name.</summary>
    public ObjectName ObjectName { get; } = name;
}

/// <summary>The backend could not be reached or failed; the operation may be retried.</summary>
public sealed class BackendUnavailableException(string backend, Exception inner)
    : Exception($"the {backend} backend is unavailable: {inner.Message}", inner)
{
    /// <summary>The backend's configuration name.</summary>
    public string Backend { get; } = backend;
}
