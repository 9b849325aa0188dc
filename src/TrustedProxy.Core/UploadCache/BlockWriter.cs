using TrustedProxy.Crypto;
using TrustedProxy.IO;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>
/// Puts one block to the backend and records that it is there: a real block is its slice of the
/// record's cache file, a dummy is the object mask's keystream for its name; both go out masked
/// (<see cref="ObjectMask"/>), so every object is uniform bytes and the body an SDK hashes is the
/// body it sends, on every pass. Put-if-absent under the block's fixed random name makes a retry
/// after a lost answer (or a crash) harmless: the block ends up there exactly once.
/// </summary>
internal sealed class BlockWriter(IObjectStore store, StagingArea staging, BlockIndex blocks, ObjectMask mask)
{
    /// <summary>Puts a real block; returns true when its record is now wholly stored (its cache file has been removed).</summary>
    /// <remarks>
    /// The retrieval group is drawn only once the put is accepted: groups are consecutive writes as
    /// the cloud counts them, so a refused or failed put must not use up a member's place.
    /// </remarks>
    public async Task<bool> PutRealAsync(CacheBlock block, DateTimeOffset now, Func<long> nextGroup, CancellationToken cancellationToken)
    {
        var handle = block.Handle ?? throw new ArgumentException("a dummy has no record", nameof(block));
        await using (var file = staging.OpenRead(handle) ?? throw new InvalidOperationException($"the cached ciphertext of record {handle} is missing"))
        {
            await using var slice = new StreamSlice(file, block.BlockIndex * block.Length, block.Length);
            await using var masked = mask.Mask(block.ObjectName, slice);
            await store.PutIfAbsentAsync(block.ObjectName, masked, block.Length, cancellationToken).ConfigureAwait(false);
        }

        var stored = await blocks.MarkReleasedAsync(block, now, expiresAt: null, nextGroup()).ConfigureAwait(false);
        if (stored)
        {
            staging.Delete(handle);
        }

        return stored;
    }

    /// <summary>Puts a dummy (already in the index as cached) and marks it released, to expire at <paramref name="expiresAt"/>.</summary>
    public async Task PutDummyAsync(CacheBlock dummy, DateTimeOffset now, DateTimeOffset? expiresAt, Func<long> nextGroup, CancellationToken cancellationToken)
    {
        await using (var content = mask.Dummy(dummy.ObjectName, dummy.Length))
        {
            await store.PutIfAbsentAsync(dummy.ObjectName, content, dummy.Length, cancellationToken).ConfigureAwait(false);
        }

        await blocks.MarkReleasedAsync(dummy, now, expiresAt, nextGroup()).ConfigureAwait(false);
    }

    /// <summary>
    /// Puts an object in a dummy's place (<see cref="ICoverPayloadSource"/>): its bytes under its name,
    /// then the dummy's row takes that name and is marked released with its retrieval group, so the
    /// index, the groups and the cover reads see a dummy as they would have. A crash between the put and
    /// the rename leaves the dummy to be written in a later slot and the object unknown to the index.
    /// A payload already in the index under its name (put and renamed before a crash that came before
    /// its source recorded it as shipped) is not put again: false, and the slot takes the dummy.
    /// </summary>
    public async Task<bool> PutCoverAsync(CoverPayload payload, CacheBlock dummy, DateTimeOffset now, DateTimeOffset? expiresAt, Func<long> nextGroup, CancellationToken cancellationToken)
    {
        if (await blocks.IsNamedAsync(payload.Name).ConfigureAwait(false))
        {
            return false;
        }

        await using (var content = payload.Open())
        {
            await store.PutIfAbsentAsync(payload.Name, content, payload.Length, cancellationToken).ConfigureAwait(false);
        }

        await blocks.RenameCachedDummyAsync(dummy.Id, payload.Name).ConfigureAwait(false);
        await blocks.MarkReleasedAsync(dummy with { ObjectName = payload.Name }, now, expiresAt, nextGroup()).ConfigureAwait(false);
        return true;
    }
}
