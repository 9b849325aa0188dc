using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.IO;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>
/// After a record has been read from the cloud, moves it to fresh ciphertext: re-encrypted under
/// the same data key with a new envelope index (so a new key and salt: nothing in common with the
/// old objects), padded, written to the upload cache and released later as new blocks under new
/// names, into new groups, after a random hold. Its old blocks stay in their groups as decoys and
/// leave at random times. Until the new blocks are out, the record is served from the cache, so a
/// hot record does not go back to the cloud. One relocation at a time; a record changed meanwhile is left alone.
/// </summary>
internal sealed partial class RecordRelocator(
    BlockIndex blocks, StagingArea staging, UploadCacheEngine cache, IOptions<RecordStoreOptions> records, IOptions<ObliviousRetrievalOptions> options, TimeProvider time, ILogger<RecordRelocator> logger)
{
    private static readonly CryptoRandom Hold = new();

    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>Whether ordinary reads relocate (configured, and possible).</summary>
    public bool Enabled => options.Value.RelocateAfterRead && CanRelocate;

    /// <summary>Whether a relocation is possible at all: the new blocks leave through the upload cache's schedule, so it must run.</summary>
    public bool CanRelocate => cache.Enabled;

    /// <summary>Relocates <paramref name="entry"/>, whose verified ciphertext is <paramref name="ciphertext"/> (left at position 0).</summary>
    public async Task RelocateAsync(RecordEntry entry, Stream ciphertext, DataKey dataKey, CancellationToken cancellationToken)
    {
        await _one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var envelopeIndex = ObjectName.NewRandom();
            BlockLayout layout;
            staging.Delete(entry.Handle);
            await using (var staged = staging.Create(entry.Handle))
            {
                ciphertext.Position = 0;
                await using (var plaintext = new EnvelopeDecryptingStream(ciphertext, dataKey, entry.ObjectName.ToBytes(), entry.PlaintextLength, leaveOpen: true))
                await using (var envelope = new EnvelopeEncryptingStream(staged, dataKey, envelopeIndex.ToBytes(), records.Value.SegmentSize, leaveOpen: true))
                {
                    await plaintext.CopyToAsync(envelope, cancellationToken).ConfigureAwait(false);
                    await envelope.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }

                layout = cache.Padding.Layout(staged.Length);
                await using (var padding = new RandomBytesStream(layout.StoredLength - staged.Length))
                {
                    await padding.CopyToAsync(staged, cancellationToken).ConfigureAwait(false);
                }

                staging.Persist(staged);
            }

            ciphertext.Position = 0;
            var now = time.GetUtcNow();
            var fresh = Enumerable.Range(0, layout.Count).Select(i =>
            {
                var admitted = now + TimeSpan.FromSeconds(Hold.NextDouble() * options.Value.RelocationHoldSeconds);
                return CacheBlock.Waiting(entry.Handle, i, layout.Length, admitted, cache.DrawDeadline(admitted));
            }).ToList();
            var ids = await blocks.RelocateAsync(entry.Handle, entry.ObjectName, envelopeIndex, layout.StoredLength, fresh, () => cache.DrawExpiry(now) ?? DateTimeOffset.MaxValue).ConfigureAwait(false);
            if (ids is null)
            {
                // Deleted or relocated by another read meanwhile: the new copy is not needed.
                staging.Delete(entry.Handle);
                return;
            }

            cache.Admit(fresh.Select((b, i) => b with { Id = ids[i] }));
            LogRelocated(logger, entry.Handle, layout.Count);
        }
        finally
        {
            _one.Release();
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Record {Handle} relocated after a read: {Blocks} new block(s) wait in the upload cache")]
    private static partial void LogRelocated(ILogger logger, string handle, int blocks);
}
