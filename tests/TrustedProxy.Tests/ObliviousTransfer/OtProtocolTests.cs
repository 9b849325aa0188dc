using System.Security.Cryptography;
using Org.BouncyCastle.Math;
using TrustedProxy.ObliviousTransfer;

namespace TrustedProxy.Tests.ObliviousTransfer;

public sealed class OtProtocolTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(8, 1)]
    [InlineData(8, 3)]
    [InlineData(64, 4)]
    public void TheReceiver_GetsExactlyTheKeysItChose(int count, int k)
    {
        var keys = MessageKeys(count);
        for (var trial = 0; trial < 3; trial++)
        {
            var choices = Enumerable.Range(0, k).Select(_ => RandomNumberGenerator.GetInt32(count)).ToList();
            var sender = new OtSender(count, k);
            var receiver = new OtReceiver(OtOffer.Parse(sender.Offer.ToBytes()), choices);

            var opened = receiver.Open(sender.Answer(OtChoice.Parse(receiver.Choice.ToBytes(), k), keys));

            Assert.Equal(choices.Select(c => keys[c]), opened);
        }
    }

    [Fact]
    public void EveryChoice_OfEightMessages_OpensItsOwnKey()
    {
        var keys = MessageKeys(8);
        for (var choice = 0; choice < 8; choice++)
        {
            var sender = new OtSender(8, 1);
            var receiver = new OtReceiver(sender.Offer, [choice]);
            var answer = sender.Answer(receiver.Choice, keys);

            Assert.Equal(keys[choice], Assert.Single(receiver.Open(answer)));
        }
    }

    [Fact]
    public void AReceiverThatDeviates_StillOpensAtMostKOfTheN()
    {
        // Deviations a receiver controls: B with a known discrete log and no choice term, B built
        // from a choice outside 0..N-1, and the same b and choice reused for every instance. For
        // each, try every key the receiver can compute (x·A for every x it knows and every shift
        // by the known multiples of A) against every wrapped key.
        var keys = MessageKeys(16);
        var sender = new OtSender(16, 2);
        var a = OtGroup.Decode(sender.Offer.A, "A");
        var x = OtGroup.RandomScalar();
        var b1 = OtGroup.MultiplyGenerator(x);                                                   // no choice term
        var b2 = a.Multiply(BigInteger.ValueOf(40)).Add(OtGroup.MultiplyGenerator(x));            // "choice" 40 of 16
        var choice = new OtChoice(sender.Offer.SessionId, [OtGroup.Encode(b1), OtGroup.Encode(b2)]);
        var answer = sender.Answer(choice, keys);

        // What the receiver can compute without a: x·A shifted by known multiples of A or of G.
        var guesses = Enumerable.Range(-64, 129).SelectMany(m => new[]
        {
            a.Multiply(x).Add(a.Multiply(BigInteger.ValueOf(m))),
            a.Multiply(x).Add(OtGroup.Generator.Multiply(BigInteger.ValueOf(m))),
        }).Where(p => !p.IsInfinity).Select(OtGroup.Encode).ToList();
        var opened = new HashSet<string>();
        for (var instance = 0; instance < 2; instance++)
        {
            for (var j = 0; j < 16; j++)
            {
                foreach (var guess in guesses)
                {
                    var key = OtProtocolTestAccess.DeriveKey(sender.Offer, choice.B[instance], instance, j, guess);
                    if (TryUnwrap(key, answer, instance, j, 16) is { } messageKey)
                    {
                        opened.Add(Convert.ToHexString(messageKey));
                    }
                }
            }
        }

        Assert.True(opened.Count <= 2, $"the receiver opened {opened.Count} keys");
    }

    [Fact]
    public void TheSendersView_IsIndependentOfTheChoice()
    {
        // Receiver privacy, empirically: the sender sees B; over many runs with choice 0 and with
        // choice 7, a distinguisher that looks at B's bits does no better than a coin.
        const int runs = 3000;
        var sender = new OtSender(8, 1);
        var samples = new List<(int Side, byte X, byte Prefix)>();
        for (var run = 0; run < runs; run++)
        {
            for (var side = 0; side < 2; side++)
            {
                var b = new OtReceiver(sender.Offer, [side == 0 ? 0 : 7]).Choice.B[0];
                samples.Add((side, b[1], b[0]));
            }
        }

        // A distinguisher trained on the first half (which side each value of x's first byte and
        // of the parity prefix came from more often), scored on the second half.
        var training = samples.Take(runs).ToList();
        var held = samples.Skip(runs).ToList();
        int Guess(byte value, Func<(int Side, byte X, byte Prefix), byte> feature) =>
            training.Count(t => feature(t) == value && t.Side == 1) > training.Count(t => feature(t) == value && t.Side == 0) ? 1 : 0;
        var byX = held.Count(h => Guess(h.X, t => t.X) == h.Side) / (double)held.Count;
        var byPrefix = held.Count(h => Guess(h.Prefix, t => t.Prefix) == h.Side) / (double)held.Count;

        Assert.InRange(byX, 0.45, 0.55);
        Assert.InRange(byPrefix, 0.45, 0.55);
    }

    [Fact]
    public void AReplayedChoice_GetsNothing()
    {
        var keys = MessageKeys(4);
        var sender = new OtSender(4, 1);
        var receiver = new OtReceiver(sender.Offer, [2]);
        sender.Answer(receiver.Choice, keys);

        var error = Assert.Throws<OtProtocolException>(() => sender.Answer(receiver.Choice, keys));
        Assert.Contains("already been answered", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AChoiceForAnotherSession_IsRefused()
    {
        var keys = MessageKeys(4);
        var first = new OtSender(4, 1);
        var second = new OtSender(4, 1);
        var receiver = new OtReceiver(first.Offer, [1]);

        Assert.Throws<OtProtocolException>(() => second.Answer(receiver.Choice, keys));
    }

    [Theory]
    [InlineData("infinity")]
    [InlineData("not-on-curve")]
    [InlineData("uncompressed-prefix")]
    [InlineData("short")]
    public void AMalformedPoint_IsRefusedWithAClearError(string defect)
    {
        var sender = new OtSender(4, 1);
        var good = new OtReceiver(sender.Offer, [0]).Choice.B[0];
        var bad = defect switch
        {
            "infinity" => new byte[33],
            "not-on-curve" => NotOnCurve(good),
            "uncompressed-prefix" => [0x04, .. good[1..]],
            _ => good[..20],
        };

        var error = Assert.Throws<OtProtocolException>(() => sender.Answer(new OtChoice(sender.Offer.SessionId, [bad]), MessageKeys(4)));
        Assert.Contains("B[0]", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(4, 0)]
    [InlineData(4, 5)]
    public void ImpossibleShapes_AreRefused(int count, int k) => Assert.Throws<OtProtocolException>(() => new OtSender(count, k));

    [Fact]
    public void TooManyChoices_AreRefused()
    {
        var sender = new OtSender(4, 1);
        var two = new OtReceiver(new OtSender(4, 2).Offer, [0, 1]).Choice;

        Assert.Throws<OtProtocolException>(() => sender.Answer(new OtChoice(sender.Offer.SessionId, two.B), MessageKeys(4)));
    }

    private static byte[] NotOnCurve(byte[] good)
    {
        // Flip x until the compressed encoding names no point of the curve.
        var candidate = (byte[])good.Clone();
        for (var i = 0; i < 256; i++)
        {
            candidate[32] = (byte)i;
            try
            {
                OtGroup.Decode(candidate, "probe");
            }
            catch (OtProtocolException)
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("no off-curve x found");
    }

    private static byte[]? TryUnwrap(byte[] key, byte[] answer, int instance, int index, int count)
    {
        var wrapped = answer.AsSpan(((instance * count) + index) * OtProtocol.WrappedKeyBytes, OtProtocol.WrappedKeyBytes);
        var messageKey = new byte[OtProtocol.KeyBytes];
        try
        {
            using var aes = new AesGcm(key, 16);
            aes.Decrypt(wrapped[..12], wrapped.Slice(12, OtProtocol.KeyBytes), wrapped.Slice(12 + OtProtocol.KeyBytes, 16), messageKey);
            return messageKey;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    private static List<byte[]> MessageKeys(int count) => Enumerable.Range(0, count).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
}

internal static class OtProtocolTestAccess
{
    public static byte[] DeriveKey(OtOffer offer, byte[] b, int instance, int index, byte[] point) =>
        OtProtocol.DeriveKey(offer.SessionId, offer.A, b, instance, index, point);
}
