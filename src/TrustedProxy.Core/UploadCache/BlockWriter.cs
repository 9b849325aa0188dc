using TrustedProxy.IO;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>
/// Puts one block to the backend and records that it is there: a real block is its slice of the
/// record's cache file, a dummy is fresh random bytes. Put-if-absent under the block's fixed random
/// name makes a retry after a lost answer (or a crash) harmless: the block ends up there exactly once.
/// </summary>
internal sealed class BlockWriter(IObjectStore store, StagingArea staging, BlockIndex blocks)
{
    /// <summary>Puts a real block; returns true when its record is now wholly stored (its cache file has been removed).</summary>
    public async Task<bool> PutRealAsync(CacheBlock block, DateTimeOffset now, long? groupId, CancellationToken cancellationToken)
    {
        var handle = block.Handle ?? throw new ArgumentException("a dummy has no record", nameof(block));
        await using (var file = staging.OpenRead(handle) ?? throw new InvalidOperationException($"the cached ciphertext of record {handle} is missing"))
        {
            await using var slice = new StreamSlice(file, block.BlockIndex * block.Length, block.Length);
            await store.PutIfAbsentAsync(block.ObjectName, slice, block.Length, cancellationToken).ConfigureAwait(false);
        }

        var stored = await blocks.MarkReleasedAsync(block, now, expiresAt: null, groupId).ConfigureAwait(false);
        if (stored)
        {
            staging.Delete(handle);
        }

        return stored;
    }

    /// <summary>Puts a dummy (already in the index as cached) and marks it released, to expire at <paramref name="expiresAt"/>.</summary>
    public async Task PutDummyAsync(CacheBlock dummy, DateTimeOffset now, DateTimeOffset? expiresAt, long? groupId, CancellationToken cancellationToken)
    {
        await using (var content = new RandomBytesStream(dummy.Length))
        {
            await store.PutIfAbsentAsync(dummy.ObjectName, content, dummy.Length, cancellationToken).ConfigureAwait(false);
        }

        await blocks.MarkReleasedAsync(dummy, now, expiresAt, groupId).ConfigureAwait(false);
    }
}
