using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>A record's plaintext, ready to stream; owns the key and the scratch copy until disposed.</summary>
internal sealed class RecordContent(Stream plaintext, long length, byte[] sha256, IDisposable key, Stream scratch) : IAsyncDisposable
{
    public Stream Stream { get; } = plaintext;

    public long Length { get; } = length;

    public byte[] Sha256 { get; } = sha256;

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync().ConfigureAwait(false);
        await scratch.DisposeAsync().ConfigureAwait(false);
        key.Dispose();
    }
}

/// <summary>
/// The retrieval path: unwrap the record's data key, copy the ciphertext out of the backend,
/// authenticate all of it (every segment, the final flag, the length and the content digest), and
/// only then hand out a stream of plaintext. A tampered, truncated or swapped object therefore
/// fails before the response starts, with a clear error, and never yields a wrong byte.
/// </summary>
internal sealed class RecordReader(IObjectStore store, ProxyKeyRing keys, StagingArea staging, IOptions<RecordStoreOptions> options)
{
    public async Task<RecordContent> OpenAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        var dataKey = keys.KeyEncryptionKey.Unwrap(entry.WrappedKey, entry.Handle);
        Stream scratch = entry.StoredLength <= options.Value.InMemoryVerifyLimitBytes
            ? new MemoryStream(checked((int)entry.StoredLength))
            : staging.CreateScratch();
        try
        {
            await using (var source = await store.OpenReadAsync(entry.ObjectName, cancellationToken).ConfigureAwait(false))
            {
                await source.CopyToAsync(scratch, cancellationToken).ConfigureAwait(false);
            }

            var objectIndex = entry.ObjectName.ToBytes();
            scratch.Position = 0;
            await using (var verify = new EnvelopeDecryptingStream(scratch, dataKey, objectIndex, entry.PlaintextLength, leaveOpen: true))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[SegmentedEnvelope.MaxSegmentSize];
                int read;
                while ((read = await verify.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                }

                if (!CryptographicOperations.FixedTimeEquals(hash.GetHashAndReset(), entry.ContentSha256))
                {
                    throw new EnvelopeIntegrityException("the decrypted record does not match the digest taken at upload");
                }
            }

            scratch.Position = 0;
            var plaintext = new EnvelopeDecryptingStream(scratch, dataKey, objectIndex, entry.PlaintextLength, leaveOpen: true);
            return new RecordContent(plaintext, entry.PlaintextLength, entry.ContentSha256, dataKey, scratch);
        }
        catch
        {
            await scratch.DisposeAsync().ConfigureAwait(false);
            dataKey.Dispose();
            throw;
        }
    }
}
