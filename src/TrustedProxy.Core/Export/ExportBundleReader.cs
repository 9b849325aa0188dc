using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using TrustedProxy.Crypto;
using TrustedProxy.Records;

namespace TrustedProxy.Export;

/// <summary>A record taken out of a bundle: its handle at the proxy, the view it was exported in, and where its file now is.</summary>
public sealed record OpenedRecord(string Handle, string View, string Path, long Length);

/// <summary>
/// The recipient's side: reads a bundle in one forward pass with one segment in memory, checks
/// every bound before it allocates, refuses a bundle for another key before anything is decrypted,
/// unwraps each record's content key with the recipient's private key, authenticates every segment
/// while writing plaintext to an owner-only scratch directory, and only when the proxy's signature
/// over the whole bundle verifies (against a server certificate the federation's CA issued) moves
/// the scratch directory to the requested output. Any refusal deletes the scratch: nothing is left.
/// </summary>
internal sealed class ExportBundleReader(ExportOptions limits, TimeProvider time)
{
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";

    public async Task<IReadOnlyList<OpenedRecord>> OpenAsync(Stream bundle, ECDiffieHellman key, X509Certificate2 ca, string outputDirectory, CancellationToken cancellationToken)
    {
        var output = Path.GetFullPath(outputDirectory);
        if (Path.Exists(output))
        {
            throw new ExportBundleException($"'{outputDirectory}' already exists; name a new directory for the records");
        }

        var parent = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(parent);
        var scratch = Path.Combine(parent, $".{Path.GetFileName(output)}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}");
        SecretFile.EnsurePrivateDirectory(scratch);
        try
        {
            var records = await ReadAsync(new TranscriptReader(bundle), key, ca, scratch, cancellationToken).ConfigureAwait(false);
            Directory.Move(scratch, output);
            return [.. records.Select(r => r with { Path = Path.Combine(output, Path.GetFileName(r.Path)) })];
        }
        catch
        {
            Directory.Delete(scratch, recursive: true);
            throw;
        }
    }

    private async Task<List<OpenedRecord>> ReadAsync(TranscriptReader input, ECDiffieHellman key, X509Certificate2 ca, string scratch, CancellationToken cancellationToken)
    {
        var magic = await input.ReadAsync(ExportFormat.Magic.Length + 1, cancellationToken).ConfigureAwait(false);
        if (!magic.AsSpan(0, ExportFormat.Magic.Length).SequenceEqual(ExportFormat.Magic))
        {
            throw new ExportBundleException("not an export bundle (no TPXE magic)");
        }

        if (magic[^1] != ExportFormat.Version)
        {
            throw new ExportBundleException($"export bundle version {magic[^1]} is not supported (this reader knows version {ExportFormat.Version})");
        }

        var fixedHeader = await input.ReadAsync(ExportFormat.BundleIdLength + 8 + 4 + 4 + ExportFormat.KeyIdLength + 2, cancellationToken).ConfigureAwait(false);
        var bundleId = fixedHeader[..ExportFormat.BundleIdLength];
        var rest = fixedHeader.AsSpan(ExportFormat.BundleIdLength);
        var segmentSize = BinaryPrimitives.ReadInt32BigEndian(rest[8..]);
        var recordCount = BinaryPrimitives.ReadInt32BigEndian(rest[12..]);
        var recipientKeyId = rest.Slice(16, ExportFormat.KeyIdLength).ToArray();
        var certificateLength = BinaryPrimitives.ReadUInt16BigEndian(rest[(16 + ExportFormat.KeyIdLength)..]);
        if (segmentSize is < ExportFormat.MinSegmentSize or > ExportFormat.MaxSegmentSize)
        {
            throw new ExportBundleException($"the bundle's segment size {segmentSize} is outside {ExportFormat.MinSegmentSize} … {ExportFormat.MaxSegmentSize}");
        }

        if (recordCount < 0 || recordCount > limits.MaxRecords)
        {
            throw new ExportBundleException($"the bundle announces {recordCount} records, more than the {limits.MaxRecords} allowed (--max-records)");
        }

        if (certificateLength > limits.MaxSignerCertificateBytes)
        {
            throw new ExportBundleException($"the bundle's signer certificate is {certificateLength} bytes, more than the {limits.MaxSignerCertificateBytes} allowed");
        }

        // Which key the bundle is for is checked first, before any work: a bundle for someone else is
        // refused as such (the signature at the end still covers this field).
        if (!CryptographicOperations.FixedTimeEquals(recipientKeyId, ExportFormat.KeyId(key)))
        {
            throw new ExportBundleException($"the bundle is for another recipient (key {Convert.ToHexStringLower(recipientKeyId)[..16]}…), not for this private key");
        }

        using var signer = ReadSigner(await input.ReadAsync(certificateLength, cancellationToken).ConfigureAwait(false), ca);
        var records = new List<OpenedRecord>(recordCount);
        long total = 0;
        for (var index = 0; index < recordCount; index++)
        {
            var record = await ReadRecordAsync(input, key, bundleId, recipientKeyId, index, segmentSize, scratch, limits.MaxRecordBytes, limits.MaxBundleBytes - total, cancellationToken).ConfigureAwait(false);
            total += record.Length;
            records.Add(record);
        }

        var transcriptHash = input.HashSoFar();
        var signatureLength = BinaryPrimitives.ReadUInt16BigEndian(await input.ReadAsync(2, cancellationToken).ConfigureAwait(false));
        if (signatureLength > ExportFormat.MaxSignatureLength)
        {
            throw new ExportBundleException("the bundle's signature is longer than any this format uses");
        }

        var signature = await input.ReadAsync(signatureLength, cancellationToken).ConfigureAwait(false);
        if (!signer.VerifyHash(transcriptHash, signature))
        {
            throw new ExportBundleException("the bundle's signature does not verify: it was altered after the proxy signed it");
        }

        if (await input.AtEndAsync(cancellationToken).ConfigureAwait(false) is false)
        {
            throw new ExportBundleException("bytes follow the bundle's signature: it was altered");
        }

        return records;
    }

    /// <summary>The signer: a certificate for server authentication that chains to the federation's CA, with an EC key.</summary>
    private ECDsa ReadSigner(byte[] der, X509Certificate2 ca)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException)
        {
            throw new ExportBundleException("the bundle's signer certificate cannot be read");
        }

        using (certificate)
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            chain.ChainPolicy.VerificationTime = time.GetUtcNow().UtcDateTime;
            chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(ServerAuthOid));
            bool built;
            try
            {
                built = chain.Build(certificate);
            }
            catch (CryptographicException)
            {
                // A certificate whose bytes were altered can fail inside the platform's verifier rather than as a broken chain.
                throw new ExportBundleException("the bundle's signer certificate cannot be verified: it was altered");
            }

            if (!built)
            {
                var why = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
                throw new ExportBundleException($"the bundle was not signed by this federation's proxy: its signer '{certificate.Subject}' does not chain to the CA given ({why})");
            }

            try
            {
                return certificate.GetECDsaPublicKey() ?? throw new ExportBundleException("the bundle's signer certificate has no EC key");
            }
            catch (CryptographicException)
            {
                throw new ExportBundleException("the bundle's signer certificate's key cannot be read");
            }
        }
    }

    private static async Task<OpenedRecord> ReadRecordAsync(
        TranscriptReader input, ECDiffieHellman key, byte[] bundleId, byte[] recipientKeyId, int index, int segmentSize, string scratch, long maxRecordBytes, long bundleBytesLeft, CancellationToken cancellationToken)
    {
        var handle = Encoding.ASCII.GetString(await input.ReadAsync((await input.ReadAsync(1, cancellationToken).ConfigureAwait(false))[0], cancellationToken).ConfigureAwait(false));
        var view = Encoding.ASCII.GetString(await input.ReadAsync((await input.ReadAsync(1, cancellationToken).ConfigureAwait(false))[0], cancellationToken).ConfigureAwait(false));
        if (!RecordHandle.IsWellFormed(handle) || !ExportFormat.IsLabel(view))
        {
            throw new ExportBundleException($"record {index + 1} of the bundle has a malformed handle or view");
        }

        var ephemeral = await input.ReadAsync(ExportFormat.EphemeralKeyLength, cancellationToken).ConfigureAwait(false);
        var wrapped = await input.ReadAsync(ExportFormat.WrappedKeyLength, cancellationToken).ConfigureAwait(false);
        var contentKey = Unwrap(key, ephemeral, wrapped, bundleId, recipientKeyId, index, handle, view);
        var path = Path.Combine(scratch, handle + ".dcm");
        if (File.Exists(path))
        {
            throw new ExportBundleException($"record {handle} is in the bundle twice");
        }

        var plain = ArrayPool<byte>.Shared.Rent(segmentSize);
        var sealedSegment = ArrayPool<byte>.Shared.Rent(segmentSize + ExportFormat.TagLength);
        try
        {
            using var aes = new AesGcm(contentKey, ExportFormat.TagLength);
            await using var file = new FileStream(path, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.Asynchronous));
            long length = 0;
            for (uint segment = 0; ; segment++)
            {
                var frame = BinaryPrimitives.ReadUInt32BigEndian(await input.ReadAsync(4, cancellationToken).ConfigureAwait(false));
                var final = (frame & ExportFormat.FinalFlag) != 0;
                var size = (int)(frame & ~ExportFormat.FinalFlag);
                if (size > segmentSize || (!final && size != segmentSize))
                {
                    throw new ExportBundleException($"record {handle}: segment {segment} has length {size}, which the bundle's segment size {segmentSize} does not allow");
                }

                length += size;
                if (length > maxRecordBytes)
                {
                    throw new ExportBundleException($"record {handle} is larger than the {maxRecordBytes} bytes allowed for one record (--max-record-bytes)");
                }

                if (length > bundleBytesLeft)
                {
                    throw new ExportBundleException($"the bundle holds more than the {bundleBytesLeft} bytes still allowed (--max-bundle-bytes)");
                }

                await input.ReadIntoAsync(sealedSegment.AsMemory(0, size + ExportFormat.TagLength), cancellationToken).ConfigureAwait(false);
                Decrypt(aes, sealedSegment, plain, size, bundleId, index, segment, final, handle);
                await file.WriteAsync(plain.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
                if (final)
                {
                    return new OpenedRecord(handle, view, path, length);
                }

                if (segment == uint.MaxValue)
                {
                    throw new ExportBundleException($"record {handle} has more segments than the format allows");
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contentKey);
            CryptographicOperations.ZeroMemory(plain);
            ArrayPool<byte>.Shared.Return(plain);
            ArrayPool<byte>.Shared.Return(sealedSegment);
        }
    }

    private static void Decrypt(AesGcm aes, byte[] sealedSegment, byte[] plain, int size, byte[] bundleId, int index, uint segment, bool final, string handle)
    {
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> aad = stackalloc byte[ExportFormat.SegmentAssociatedDataLength];
        ExportFormat.SegmentNonce(nonce, segment, final);
        ExportFormat.SegmentAssociatedData(aad, bundleId, index, segment, final);
        try
        {
            aes.Decrypt(nonce, sealedSegment.AsSpan(0, size), sealedSegment.AsSpan(size, ExportFormat.TagLength), plain.AsSpan(0, size), aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new ExportBundleException($"record {handle}: segment {segment} fails authentication: the bundle was altered");
        }
    }

    private static byte[] Unwrap(ECDiffieHellman key, byte[] ephemeral, byte[] wrapped, byte[] bundleId, byte[] recipientKeyId, int index, string handle, string view)
    {
        if (ephemeral[0] != 0x04)
        {
            throw new ExportBundleException($"record {handle}: the ephemeral key is not an uncompressed P-256 point");
        }

        ECDiffieHellman peer;
        try
        {
            // Importing checks the point is on the curve (an invalid-curve point would leak the private key bit by bit).
            peer = ECDiffieHellman.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = ephemeral[1..33], Y = ephemeral[33..] } });
        }
        catch (CryptographicException)
        {
            throw new ExportBundleException($"record {handle}: the ephemeral key is not a point on P-256: the bundle was altered");
        }

        byte[] secret;
        using (peer)
        {
            secret = key.DeriveRawSecretAgreement(peer.PublicKey);
        }

        var wrappingKey = ExportFormat.WrappingKey(secret, ephemeral, recipientKeyId, bundleId, index);
        var contentKey = new byte[ExportFormat.ContentKeyLength];
        try
        {
            using var aes = new AesGcm(wrappingKey, ExportFormat.TagLength);
            aes.Decrypt(new byte[12], wrapped.AsSpan(0, ExportFormat.ContentKeyLength), wrapped.AsSpan(ExportFormat.ContentKeyLength), contentKey, ExportFormat.WrapAssociatedData(handle, view));
            return contentKey;
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new ExportBundleException($"record {handle}: its key does not unwrap with this private key: the bundle was altered or the key is not the recipient's");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(wrappingKey);
        }
    }

    /// <summary>Reads exactly what is asked, hashing every byte into the transcript the signature covers; the end of the stream before that is a truncated bundle.</summary>
    private sealed class TranscriptReader(Stream input)
    {
        private readonly IncrementalHash _hash = CreateHash();

        public async Task<byte[]> ReadAsync(int count, CancellationToken cancellationToken)
        {
            var bytes = new byte[count];
            await ReadIntoAsync(bytes, cancellationToken).ConfigureAwait(false);
            return bytes;
        }

        public async Task ReadIntoAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            try
            {
                await input.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (EndOfStreamException)
            {
                throw new ExportBundleException("the bundle is truncated");
            }

            _hash.AppendData(buffer.Span);
        }

        public byte[] HashSoFar() => _hash.GetHashAndReset();

        public async Task<bool> AtEndAsync(CancellationToken cancellationToken) => await input.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) == 0;

        private static IncrementalHash CreateHash()
        {
            var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(ExportFormat.SignatureLabel);
            return hash;
        }
    }
}
