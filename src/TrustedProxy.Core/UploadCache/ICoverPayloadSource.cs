using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>An object that may take a dummy's slot: exactly the dummy's length, under its own name, already uniform bytes.</summary>
internal sealed record CoverPayload(ObjectName Name, long Length, Func<Stream> Open, object Token);

/// <summary>
/// Something that ships its objects in the upload cache's dummy slots instead of extra writes (the
/// backup, Backup/). The release loop asks at each dummy slot; when there is an object of the dummy's
/// length, it replaces the prepared dummy's bytes and name (same slot time, same size, one put, the
/// same random draws) and the dummy's index row becomes the object's. Called only from the release loop.
/// </summary>
internal interface ICoverPayloadSource
{
    /// <summary>The next object waiting for a slot of <paramref name="length"/> bytes, or null.</summary>
    CoverPayload? Peek(long length);

    /// <summary>The object is in the backend (the put was accepted, or found it already there).</summary>
    void Shipped(CoverPayload payload);
}
