using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>An object that may take a dummy's slot: exactly the dummy's length, under its own name, already uniform bytes.</summary>
internal sealed record CoverPayload(ObjectName Name, long Length, Func<Stream> Open, object Token);

/// <summary>Objects a cover source put earlier and no longer needs (an old backup generation's), to be deleted from the backend.</summary>
internal sealed record RetiredObjects(IReadOnlyList<ObjectName> Names, object Token);

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

    /// <summary>
    /// Up to <paramref name="max"/> names of the source's own objects that are to leave the backend,
    /// or null. The source keeps them (durably) until <see cref="RetirementScheduled"/>: the same
    /// names may come again after a restart, so scheduling them must be idempotent.
    /// </summary>
    RetiredObjects? PeekRetired(int max);

    /// <summary>Every index row carrying one of these names now has its own random delete time (the sweep deletes it then): the source may forget them.</summary>
    void RetirementScheduled(RetiredObjects retired);
}
