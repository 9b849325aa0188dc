using TrustedProxy.Crypto;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>The record moved to new ciphertext (relocated after another read) since its entry was read; read it again.</summary>
internal sealed class RecordRelocatedException(string handle) : Exception($"record {handle} was relocated while it was being read");

/// <summary>
/// Reads a record's blocks from the cloud the oblivious way: every member of each block's
/// retrieval group, whole, in one random order across all of them, so that the cloud sees N
/// indistinguishable reads per block and cannot tell which were wanted. Objects released before
/// groups existed, if any are left, are read alone.
/// </summary>
internal sealed class GroupReader(IObjectStore store, BlockIndex blocks, Random random)
{
    /// <summary>Writes the record's blocks, in order, to <paramref name="destination"/> (positioned at 0).</summary>
    public async Task ReadAsync(RecordEntry entry, Stream destination, CancellationToken cancellationToken)
    {
        var wanted = await blocks.OfRecordAsync(entry.Handle).ConfigureAwait(false);
        if (wanted.Any(b => b.State != BlockState.Released))
        {
            throw new RecordRelocatedException(entry.Handle);
        }

        var groups = wanted.Where(b => b.GroupId is not null).Select(b => b.GroupId!.Value).ToHashSet();
        var members = (groups.Count == 0 ? [] : await blocks.GroupMembersAsync(groups).ConfigureAwait(false))
            .Concat(wanted.Where(b => b.GroupId is null))
            .DistinctBy(b => b.Id)
            .ToList();
        IReadOnlyList<CacheBlock> plan;
        lock (random)
        {
            plan = RetrievalGroups.ReadPlan(members, random);
        }

        var byId = wanted.ToDictionary(b => b.Id);
        var received = new Dictionary<int, byte[]>();
        foreach (var member in plan)
        {
            if (!byId.TryGetValue(member.Id, out var block))
            {
                await ReadDecoyAsync(member, cancellationToken).ConfigureAwait(false);
                continue;
            }

            // Every member is read whole: a read cut short would mark it as a decoy.
            await using var source = await store.OpenReadAsync(member.ObjectName, cancellationToken).ConfigureAwait(false);
            {
                using var copy = new MemoryStream();
                await source.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
                if (copy.Length != block.Length)
                {
                    // Padding is not authenticated (it carries nothing), but every object has a known size.
                    throw new EnvelopeIntegrityException($"a block of the record has {copy.Length} bytes in the backend, not {block.Length}");
                }

                received[block.BlockIndex] = copy.ToArray();
            }
        }

        foreach (var block in wanted)
        {
            await destination.WriteAsync(received[block.BlockIndex], cancellationToken).ConfigureAwait(false);
        }
    }

    // A decoy deleted meanwhile (its expiry came) is no reason to fail someone else's read.
    private async Task ReadDecoyAsync(CacheBlock member, CancellationToken cancellationToken)
    {
        try
        {
            await using var source = await store.OpenReadAsync(member.ObjectName, cancellationToken).ConfigureAwait(false);
            await source.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        }
        catch (StoredObjectNotFoundException)
        {
        }
    }
}
