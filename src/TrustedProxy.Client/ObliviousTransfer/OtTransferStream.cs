using System.Buffers.Binary;
using System.Security.Cryptography;

namespace TrustedProxy.ObliviousTransfer;

/// <summary>
/// The body of a transfer, after the consumer's choice: a header, the OT answer (the wrapped
/// message keys), then all N records, each AES-256-GCM-encrypted under its message key with the
/// session id and its index as associated data. The consumer can open exactly the k it chose.
/// Layout: "TPOT" | version (1) | N (4) | k (4) | answer length (4) | answer |
/// N × [ciphertext length (8) | nonce (12) | ciphertext | tag (16)]; integers big-endian.
/// </summary>
public static class OtTransferStream
{
    public const string MediaType = "application/vnd.trustedproxy.ot-transfer";

    private const byte Version = 1;
    private static readonly byte[] Magic = "TPOT"u8.ToArray();

    public static async Task WriteHeaderAsync(Stream destination, int count, int choices, byte[] answer, CancellationToken cancellationToken)
    {
        var header = new byte[17];
        Magic.CopyTo(header, 0);
        header[4] = Version;
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(5), count);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(9), choices);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(13), answer.Length);
        await destination.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        await destination.WriteAsync(answer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Encrypts record <paramref name="index"/> under its message key and writes it.</summary>
    public static async Task WriteRecordAsync(Stream destination, byte[] messageKey, byte[] sessionId, int index, ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        var prefix = new byte[8 + 12];
        BinaryPrimitives.WriteInt64BigEndian(prefix, plaintext.Length);
        RandomNumberGenerator.Fill(prefix.AsSpan(8));
        var sealedRecord = new byte[plaintext.Length + 16];
        using (var aes = new AesGcm(messageKey, 16))
        {
            aes.Encrypt(prefix.AsSpan(8), plaintext.Span, sealedRecord.AsSpan(0, plaintext.Length), sealedRecord.AsSpan(plaintext.Length), Aad(sessionId, index));
        }

        await destination.WriteAsync(prefix, cancellationToken).ConfigureAwait(false);
        await destination.WriteAsync(sealedRecord, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a transfer and returns the chosen records' plaintexts, in the order chosen; the others are skipped unread.</summary>
    public static async Task<IReadOnlyList<byte[]>> ReadAsync(Stream source, OtReceiver receiver, OtOffer offer, IReadOnlyList<int> choices, long maxRecordBytes, CancellationToken cancellationToken)
    {
        var header = new byte[17];
        await source.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
        if (!header.AsSpan(0, 4).SequenceEqual(Magic) || header[4] != Version
            || BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) != offer.Count
            || BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(9)) != offer.Choices)
        {
            throw new OtProtocolException("the transfer does not match the offer");
        }

        var answerLength = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(13));
        if (answerLength != offer.Choices * offer.Count * OtProtocol.WrappedKeyBytes)
        {
            throw new OtProtocolException("the transfer's answer has the wrong length");
        }

        var answer = new byte[answerLength];
        await source.ReadExactlyAsync(answer, cancellationToken).ConfigureAwait(false);
        var keys = receiver.Open(answer);

        var wanted = new Dictionary<int, byte[]>();
        for (var i = 0; i < choices.Count; i++)
        {
            wanted.TryAdd(choices[i], keys[i]);
        }

        var plaintexts = new Dictionary<int, byte[]>();
        var prefix = new byte[8 + 12];
        for (var index = 0; index < offer.Count; index++)
        {
            await source.ReadExactlyAsync(prefix, cancellationToken).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadInt64BigEndian(prefix);
            if (length < 0 || length > maxRecordBytes)
            {
                throw new OtProtocolException($"record {index} of the transfer claims {length} bytes");
            }

            var sealedRecord = new byte[length + 16];
            await source.ReadExactlyAsync(sealedRecord, cancellationToken).ConfigureAwait(false);
            if (wanted.TryGetValue(index, out var key))
            {
                var plaintext = new byte[length];
                try
                {
                    using var aes = new AesGcm(key, 16);
                    aes.Decrypt(prefix.AsSpan(8), sealedRecord.AsSpan(0, (int)length), sealedRecord.AsSpan((int)length), plaintext, Aad(offer.SessionId, index));
                }
                catch (AuthenticationTagMismatchException)
                {
                    throw new OtProtocolException($"record {index} of the transfer does not open under its key");
                }

                plaintexts[index] = plaintext;
            }
        }

        return choices.Select(c => plaintexts[c]).ToList();
    }

    private static byte[] Aad(byte[] sessionId, int index)
    {
        var aad = new byte[sessionId.Length + 4];
        sessionId.CopyTo(aad, 0);
        BinaryPrimitives.WriteInt32BigEndian(aad.AsSpan(sessionId.Length), index);
        return aad;
    }
}
