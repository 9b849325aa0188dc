using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.IO;
using TrustedProxy.Storage;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.UploadCache;

using TrustedProxy.Telemetry;

namespace TrustedProxy.Records;

/// <summary>A record's plaintext, ready to stream; owns the key, the scratch copy and the plaintext held in memory until disposed.</summary>
internal sealed class RecordContent(Stream plaintext, long length, byte[] sha256, IDisposable key, Stream scratch, PlaintextBuffer? whole = null) : IAsyncDisposable
{
    private PlaintextBuffer? _whole = whole;

    public Stream Stream { get; } = plaintext;

    public long Length { get; } = length;

    public byte[] Sha256 { get; } = sha256;

    /// <summary>
    /// The whole plaintext, authenticated, when the record was small enough to decrypt into memory
    /// (<see cref="RecordStoreOptions.InMemoryVerifyLimitBytes"/>); the caller then owns it and this
    /// content's <see cref="Stream"/> must not be read again. Null for a record that streams, or once taken.
    /// </summary>
    public PlaintextBuffer? TakeWhole() => Interlocked.Exchange(ref _whole, null);

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync().ConfigureAwait(false);
        await scratch.DisposeAsync().ConfigureAwait(false);
        _whole?.Dispose();
        key.Dispose();
    }
}

/// <summary>
/// The retrieval path: unwrap the record's data key, take its ciphertext (from the upload cache
/// while it waits there, else its blocks from the backend, read obliviously with their retrieval
/// groups, into a scratch copy),
/// authenticate all of it (every segment, the final flag, the length and the content digest), and
/// only then hand out a stream of plaintext. A tampered, truncated, swapped or reordered object
/// therefore fails before the response starts, with a clear error, and never yields a wrong byte.
/// </summary>
internal sealed class RecordReader(RecordIndex index, GroupReader groups, RecordRelocator relocator, RelocationQueue relocations, ProxyKeyRing keys, StagingArea staging, IOptions<RecordStoreOptions> options)
{
    /// <summary>Opens a record for an ordinary read: one read from the cloud is relocated afterwards, off the request path (<see cref="RelocationQueue"/>), as configured.</summary>
    public Task<RecordContent> OpenAsync(RecordEntry entry, CancellationToken cancellationToken) =>
        OpenAsync(entry, relocator.Enabled ? Relocation.Queued : Relocation.None, cancellationToken);

    /// <summary>Opens a record and, if it came from the cloud, relocates it before returning (the object-format migration, whose whole point is the move).</summary>
    public Task<RecordContent> OpenAndRelocateAsync(RecordEntry entry, CancellationToken cancellationToken) =>
        OpenAsync(entry, Relocation.Now, cancellationToken);

    /// <summary>
    /// Announces that these records are about to be read one after the other (a study over
    /// WADO-RS): their cloud blocks are read as one stream, not one stream per record. Dispose when
    /// the retrieval ends.
    /// </summary>
    public Task<IDisposable> PrefetchAsync(IReadOnlyList<RecordEntry> entries, CancellationToken cancellationToken)
    {
        // A record the proxy serves itself (still cached, or queued for relocation: its old objects
        // must never be read again) is not read, but it counts towards the stream's size.
        var local = entries.Where(IsLocal).ToList();
        return groups.PrefetchAsync(entries.Except(local).ToList(), local, cancellationToken);
    }

    private bool IsLocal(RecordEntry entry) => entry.State == RecordState.Cached || relocations.IsQueued(entry);

    private async Task<RecordContent> OpenAsync(RecordEntry entry, Relocation relocate, CancellationToken cancellationToken)
    {
        try
        {
            return await OpenOnceAsync(entry, relocate, cancellationToken).ConfigureAwait(false);
        }
        catch (RecordRelocatedException)
        {
            // Another read relocated it meanwhile: it now waits in the upload cache.
            var moved = await index.FindAsync(entry.Handle).ConfigureAwait(false) ?? throw new StoredObjectNotFoundException(entry.ObjectName);
            return await OpenOnceAsync(moved, relocate, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<RecordContent> OpenOnceAsync(RecordEntry entry, Relocation relocate, CancellationToken cancellationToken)
    {
        using var span = ProxyTracing.Start("record.read");
        span?.SetTag(ProxyTracing.Bytes, entry.PlaintextLength);
        var dataKey = keys.KeyEncryptionKeys.Unwrap(entry.WrappedKey, entry.Handle);
        Stream? ciphertext = null;
        PlaintextBuffer? whole = null;
        try
        {
            // A cached record's file may go the moment its last block is released; an open handle
            // keeps reading it, and a file already gone means the blocks are all in the backend.
            // A record whose relocation is queued is served from the queue's copy, never the cloud's old objects.
            ciphertext = entry.State == RecordState.Cached ? staging.OpenRead(entry.Handle) : relocations.OpenQueued(entry);
            var fromCloud = ciphertext is null;
            span?.SetTag(ProxyTracing.RecordSource, fromCloud ? "cloud" : entry.State == RecordState.Cached ? "cache" : "relocation-queue");
            if (!fromCloud && relocate != Relocation.Now)
            {
                // An ordinary read served locally still starts the stream a read would (unless its
                // retrieval's prefetch counted it): the cloud sees a stream follow every request.
                await groups.ServedLocallyAsync(entry).ConfigureAwait(false);
            }

            ciphertext ??= await CopyFromBackendAsync(entry, cancellationToken).ConfigureAwait(false);

            // A record small enough to hold (most instances) is decrypted once, straight into a
            // pooled buffer, while it is verified, and served from there; a larger one is verified
            // in a first pass and decrypted again as it streams, so that no plaintext ever reaches the disk.
            var objectIndex = entry.ObjectName.ToBytes();
            whole = entry.PlaintextLength <= options.Value.InMemoryVerifyLimitBytes ? new PlaintextBuffer(checked((int)entry.PlaintextLength)) : null;
            await using (var verify = new EnvelopeDecryptingStream(ciphertext, dataKey, objectIndex, entry.PlaintextLength, leaveOpen: true))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                if (whole is not null)
                {
                    await verify.ReadExactlyAsync(whole.Memory, cancellationToken).ConfigureAwait(false);
                    hash.AppendData(whole.Span);
                    if (await verify.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
                    {
                        throw new EnvelopeIntegrityException("the decrypted record is longer than the index records");
                    }
                }
                else
                {
                    var buffer = ArrayPool<byte>.Shared.Rent(SegmentedEnvelope.MaxSegmentSize);
                    try
                    {
                        int read;
                        while ((read = await verify.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                        {
                            hash.AppendData(buffer, 0, read);
                        }
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(buffer);
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }

                if (!CryptographicOperations.FixedTimeEquals(hash.GetHashAndReset(), entry.ContentSha256))
                {
                    throw new EnvelopeIntegrityException("the decrypted record does not match the digest taken at upload");
                }
            }

            if (fromCloud && relocate == Relocation.Queued)
            {
                await relocations.EnqueueAsync(entry, ciphertext, cancellationToken).ConfigureAwait(false);
            }
            else if (fromCloud && relocate == Relocation.Now)
            {
                await relocator.RelocateAsync(entry, ciphertext, dataKey, cancellationToken).ConfigureAwait(false);
            }

            if (whole is not null)
            {
                await ciphertext.DisposeAsync().ConfigureAwait(false);
                return new RecordContent(new MemoryStream(whole.Array, 0, whole.Length, writable: false), entry.PlaintextLength, entry.ContentSha256, dataKey, Stream.Null, whole);
            }

            ciphertext.Position = 0;
            var plaintext = new EnvelopeDecryptingStream(ciphertext, dataKey, objectIndex, entry.PlaintextLength, leaveOpen: true);
            return new RecordContent(plaintext, entry.PlaintextLength, entry.ContentSha256, dataKey, ciphertext);
        }
        catch
        {
            if (ciphertext is not null)
            {
                await ciphertext.DisposeAsync().ConfigureAwait(false);
            }

            whole?.Dispose();
            dataKey.Dispose();
            throw;
        }
    }

    private async Task<Stream> CopyFromBackendAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        Stream scratch = entry.StoredLength <= options.Value.InMemoryVerifyLimitBytes
            ? new MemoryStream(checked((int)entry.StoredLength))
            : staging.CreateScratch();
        try
        {
            await groups.ReadAsync(entry, scratch, cancellationToken).ConfigureAwait(false);
            scratch.Position = 0;
            return scratch;
        }
        catch
        {
            await scratch.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>What follows a read from the cloud.</summary>
internal enum Relocation
{
    None,

    /// <summary>Relocated in the background (<see cref="RelocationQueue"/>).</summary>
    Queued,

    /// <summary>Relocated before the read returns.</summary>
    Now,
}
