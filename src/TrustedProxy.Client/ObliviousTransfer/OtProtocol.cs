using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Math;
using ECPoint = Org.BouncyCastle.Math.EC.ECPoint;

namespace TrustedProxy.ObliviousTransfer;

/// <summary>
/// The sender's opening of a k-out-of-N transfer: a fresh session id, N, k and the point A = a·G.
/// Wire form: version (1) | session (16) | N (4, big-endian) | k (4) | A (33).
/// </summary>
public sealed record OtOffer(byte[] SessionId, int Count, int Choices, byte[] A)
{
    public const byte Version = 1;

    public const int WireLength = 1 + OtProtocol.SessionIdBytes + 4 + 4 + OtGroup.PointBytes;

    public byte[] ToBytes()
    {
        var bytes = new byte[WireLength];
        bytes[0] = Version;
        SessionId.CopyTo(bytes, 1);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(17), Count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(21), Choices);
        A.CopyTo(bytes, 25);
        return bytes;
    }

    public static OtOffer Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != WireLength || bytes[0] != Version)
        {
            throw new OtProtocolException($"an offer is {WireLength} bytes of version {Version}");
        }

        var offer = new OtOffer(bytes.Slice(1, 16).ToArray(), BinaryPrimitives.ReadInt32BigEndian(bytes[17..]), BinaryPrimitives.ReadInt32BigEndian(bytes[21..]), bytes[25..].ToArray());
        OtProtocol.CheckShape(offer.Count, offer.Choices);
        OtGroup.Decode(offer.A, "the sender's point A");
        return offer;
    }
}

/// <summary>The receiver's answer: the session it answers and one point B per choice. Wire form: session (16) | k × B (33).</summary>
public sealed record OtChoice(byte[] SessionId, IReadOnlyList<byte[]> B)
{
    public byte[] ToBytes() => [.. SessionId, .. B.SelectMany(b => b)];

    public static OtChoice Parse(ReadOnlySpan<byte> bytes, int choices)
    {
        if (bytes.Length != OtProtocol.SessionIdBytes + (choices * OtGroup.PointBytes))
        {
            throw new OtProtocolException($"a choice for {choices} record(s) is {OtProtocol.SessionIdBytes + (choices * OtGroup.PointBytes)} bytes");
        }

        var session = bytes[..OtProtocol.SessionIdBytes].ToArray();
        var points = new List<byte[]>();
        for (var i = 0; i < choices; i++)
        {
            points.Add(bytes.Slice(OtProtocol.SessionIdBytes + (i * OtGroup.PointBytes), OtGroup.PointBytes).ToArray());
        }

        return new OtChoice(session, points);
    }
}

/// <summary>
/// Constants and key derivation shared by both sides. The construction is Chou and Orlandi's
/// "simplest OT" (2015) in its 1-out-of-N form, run k times in parallel under one sender key for
/// k-out-of-N; see docs/oblivious-transfer.md.
/// </summary>
public static class OtProtocol
{
    public const int SessionIdBytes = 16;

    /// <summary>A P-256 point in compressed form.</summary>
    public const int PointBytes = 33;

    public const int KeyBytes = 32;

    /// <summary>A message key wrapped under one derived key: nonce (12) | ciphertext (32) | tag (16).</summary>
    public const int WrappedKeyBytes = 12 + KeyBytes + 16;

    /// <summary>Most messages one transfer may offer.</summary>
    public const int MaxCount = 1 << 16;

    private static readonly byte[] Label = Encoding.ASCII.GetBytes("TrustedProxy/ot/v1");

    internal static void CheckShape(int count, int choices)
    {
        if (count < 1 || count > MaxCount)
        {
            throw new OtProtocolException($"a transfer offers 1 to {MaxCount} messages, not {count}");
        }

        if (choices < 1 || choices > count)
        {
            throw new OtProtocolException($"a transfer of {count} message(s) lets the receiver choose 1 to {count}, not {choices}");
        }
    }

    /// <summary>
    /// The key of message j in instance i: HKDF-SHA256 over the shared point, salted with the
    /// session id, bound to the transcript (A, B_i) and to (i, j), so that a key of one session,
    /// instance or index says nothing about another.
    /// </summary>
    internal static byte[] DeriveKey(ReadOnlySpan<byte> sessionId, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int instance, int index, ReadOnlySpan<byte> sharedPoint)
    {
        Span<byte> counters = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(counters, instance);
        BinaryPrimitives.WriteInt32BigEndian(counters[4..], index);
        byte[] info = [.. Label, .. a, .. b, .. counters];
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, sharedPoint.ToArray(), KeyBytes, sessionId.ToArray(), info);
    }
}

/// <summary>
/// The sender's side of one transfer. It offers N message keys and answers exactly one choice
/// message: a second answer, a choice for another session or a malformed point is refused.
/// </summary>
public sealed class OtSender
{
    private readonly BigInteger _a;
    private bool _answered;

    public OtSender(int count, int choices)
    {
        OtProtocol.CheckShape(count, choices);
        _a = OtGroup.RandomScalar();
        Offer = new OtOffer(RandomNumberGenerator.GetBytes(OtProtocol.SessionIdBytes), count, choices, OtGroup.Encode(OtGroup.MultiplyGenerator(_a)));
    }

    public OtOffer Offer { get; }

    /// <summary>
    /// For each of the receiver's k points B_i and each j, the message key K_j wrapped under
    /// k_ij = H(a·(B_i − j·A)); only j = c_i gives the key the receiver can compute (b·A).
    /// Layout: instance-major, k × N × <see cref="OtProtocol.WrappedKeyBytes"/>.
    /// </summary>
    public byte[] Answer(OtChoice choice, IReadOnlyList<byte[]> messageKeys)
    {
        if (_answered)
        {
            throw new OtProtocolException("this transfer has already been answered; a replayed choice gets nothing");
        }

        if (!CryptographicOperations.FixedTimeEquals(choice.SessionId, Offer.SessionId))
        {
            throw new OtProtocolException("the choice answers another transfer");
        }

        if (choice.B.Count != Offer.Choices)
        {
            throw new OtProtocolException($"the choice names {choice.B.Count} record(s); this transfer allows {Offer.Choices}");
        }

        if (messageKeys.Count != Offer.Count || messageKeys.Any(k => k.Length != OtProtocol.KeyBytes))
        {
            throw new ArgumentException($"a transfer of {Offer.Count} messages needs {Offer.Count} keys of {OtProtocol.KeyBytes} bytes");
        }

        var points = choice.B.Select((b, i) => OtGroup.Decode(b, $"the receiver's point B[{i}]")).ToList();
        _answered = true;

        var count = Offer.Count;
        var answer = new byte[Offer.Choices * count * OtProtocol.WrappedKeyBytes];
        var t = OtGroup.Decode(Offer.A, "A").Multiply(_a); // a·A
        for (var i = 0; i < points.Count; i++)
        {
            // a·(B − j·A) for j = 0, 1, …: one point subtraction per message, normalized together.
            var shared = new ECPoint[count];
            shared[0] = points[i].Multiply(_a);
            for (var j = 1; j < count; j++)
            {
                shared[j] = shared[j - 1].Subtract(t);
            }

            OtGroup.Curve.NormalizeAll(shared);
            for (var j = 0; j < count; j++)
            {
                if (shared[j].IsInfinity)
                {
                    throw new OtProtocolException($"the receiver's point B[{i}] is degenerate");
                }

                var key = OtProtocol.DeriveKey(Offer.SessionId, Offer.A, choice.B[i], i, j, shared[j].GetEncoded(compressed: true));
                Wrap(key, messageKeys[j], answer.AsSpan(((i * count) + j) * OtProtocol.WrappedKeyBytes, OtProtocol.WrappedKeyBytes));
                CryptographicOperations.ZeroMemory(key);
            }
        }

        return answer;
    }

    private static void Wrap(byte[] key, byte[] messageKey, Span<byte> destination)
    {
        RandomNumberGenerator.Fill(destination[..12]);
        using var aes = new AesGcm(key, 16);
        aes.Encrypt(destination[..12], messageKey, destination.Slice(12, OtProtocol.KeyBytes), destination.Slice(12 + OtProtocol.KeyBytes, 16));
    }
}

/// <summary>
/// The receiver's side: chooses k of the N messages. B_i = c_i·A + b_i·G is a uniformly random
/// point whatever c_i is, so the sender learns nothing of the choice; the receiver can compute only
/// k_{i,c_i} = H(b_i·A).
/// </summary>
public sealed class OtReceiver
{
    private readonly OtOffer _offer;
    private readonly int[] _choices;
    private readonly BigInteger[] _b;

    public OtReceiver(OtOffer offer, IReadOnlyList<int> choices)
    {
        OtProtocol.CheckShape(offer.Count, offer.Choices);
        if (choices.Count != offer.Choices || choices.Any(c => c < 0 || c >= offer.Count))
        {
            throw new OtProtocolException($"choose {offer.Choices} of messages 0 to {offer.Count - 1}");
        }

        _offer = offer;
        _choices = [.. choices];
        _b = choices.Select(_ => OtGroup.RandomScalar()).ToArray();
        var a = OtGroup.Decode(offer.A, "the sender's point A");
        Choice = new OtChoice(offer.SessionId, choices.Select((c, i) =>
            OtGroup.Encode(a.Multiply(BigInteger.ValueOf(c)).Add(OtGroup.MultiplyGenerator(_b[i])))).ToList());
    }

    public OtChoice Choice { get; }

    /// <summary>The message keys of the chosen messages, in the order chosen.</summary>
    public IReadOnlyList<byte[]> Open(ReadOnlySpan<byte> answer)
    {
        var count = _offer.Count;
        if (answer.Length != _choices.Length * count * OtProtocol.WrappedKeyBytes)
        {
            throw new OtProtocolException($"the answer is {answer.Length} bytes, not {_choices.Length * count * OtProtocol.WrappedKeyBytes}");
        }

        var a = OtGroup.Decode(_offer.A, "A");
        var keys = new List<byte[]>();
        for (var i = 0; i < _choices.Length; i++)
        {
            var key = OtProtocol.DeriveKey(_offer.SessionId, _offer.A, Choice.B[i], i, _choices[i], OtGroup.Encode(a.Multiply(_b[i])));
            var wrapped = answer.Slice(((i * count) + _choices[i]) * OtProtocol.WrappedKeyBytes, OtProtocol.WrappedKeyBytes);
            var messageKey = new byte[OtProtocol.KeyBytes];
            try
            {
                using var aes = new AesGcm(key, 16);
                aes.Decrypt(wrapped[..12], wrapped.Slice(12, OtProtocol.KeyBytes), wrapped.Slice(12 + OtProtocol.KeyBytes, 16), messageKey);
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new OtProtocolException($"the answer for choice {i} does not open: the sender deviated or the answer was altered");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(key);
            }

            keys.Add(messageKey);
        }

        return keys;
    }
}
