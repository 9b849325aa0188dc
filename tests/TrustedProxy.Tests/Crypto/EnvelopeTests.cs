using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Crypto;

public sealed class EnvelopeTests
{
    private const int Segment = SegmentedEnvelope.MinSegmentSize;

    public static TheoryData<int> Lengths => [0, 1, Segment - 1, Segment, Segment + 1, 3 * Segment, 3 * Segment + 17, 200_003];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Encrypt_ThenDecrypt_ReturnsThePlaintext(int length)
    {
        var plaintext = RandomNumberGenerator.GetBytes(length);
        using var key = DataKey.CreateRandom();
        var name = ObjectName.NewRandom();

        var sealedBytes = Seal(plaintext, key, name);

        Assert.Equal(SegmentedEnvelope.CiphertextLength(length, Segment), sealedBytes.Length);
        Assert.Equal(plaintext, Open(sealedBytes, key, name, length));
    }

    [Fact]
    public async Task Encrypt_WrittenInOddChunksAsynchronously_IsTheSameFormat()
    {
        var plaintext = RandomNumberGenerator.GetBytes(5 * Segment + 123);
        using var key = DataKey.CreateRandom();
        var name = ObjectName.NewRandom();
        using var output = new MemoryStream();
        await using (var envelope = new EnvelopeEncryptingStream(output, key, name.ToBytes(), Segment, leaveOpen: true))
        {
            for (var offset = 0; offset < plaintext.Length; offset += 777)
            {
                await envelope.WriteAsync(plaintext.AsMemory(offset, Math.Min(777, plaintext.Length - offset)));
            }

            await envelope.CompleteAsync();
        }

        Assert.Equal(plaintext, Open(output.ToArray(), key, name, plaintext.Length));
    }

    [Fact]
    public void Ciphertext_ContainsNoPlaintextRun()
    {
        var plaintext = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("Doe^John 1CT1 ", 2000)));
        using var key = DataKey.CreateRandom();

        var sealedBytes = Seal(plaintext, key, ObjectName.NewRandom());

        Assert.Equal(-1, sealedBytes.AsSpan().IndexOf("Doe^John"u8));
    }

    [Fact]
    public void TheSameRecordEncryptedTwice_GivesUnrelatedCiphertexts()
    {
        var plaintext = RandomNumberGenerator.GetBytes(3 * Segment);
        using var key = DataKey.CreateRandom();
        var name = ObjectName.NewRandom();

        var first = Seal(plaintext, key, name);
        var second = Seal(plaintext, key, name);

        Assert.NotEqual(first[SegmentedEnvelope.HeaderLength..], second[SegmentedEnvelope.HeaderLength..]);
    }

    [Theory]
    [InlineData(0)] // magic
    [InlineData(10)] // salt
    [InlineData(SegmentedEnvelope.HeaderLength + 5)] // first segment body
    [InlineData(SegmentedEnvelope.HeaderLength + Segment + 3)] // first segment tag
    [InlineData(-1)] // last byte: final tag
    public void OneFlippedByte_AnywhereIsDetected(int position)
    {
        var (sealedBytes, key, name, length) = SealedSample(3 * Segment + 100);
        var index = position >= 0 ? position : sealedBytes.Length + position;
        sealedBytes[index] ^= 0x01;

        Assert.Throws<EnvelopeIntegrityException>(() => Open(sealedBytes, key, name, length));
    }

    [Fact]
    public void RemovingTheFinalSegment_IsDetectedAsTruncation()
    {
        var (sealedBytes, key, name, _) = SealedSample(3 * Segment + 100);
        var withoutLast = sealedBytes[..(SegmentedEnvelope.HeaderLength + 3 * (Segment + SegmentedEnvelope.TagLength))];

        var error = Assert.Throws<EnvelopeIntegrityException>(() => Open(withoutLast, key, name, expected: null));
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void RemovingAMiddleSegment_IsDetected()
    {
        var (sealedBytes, key, name, _) = SealedSample(3 * Segment + 100);
        var full = Segment + SegmentedEnvelope.TagLength;
        var cut = sealedBytes[..(SegmentedEnvelope.HeaderLength + full)].Concat(sealedBytes[(SegmentedEnvelope.HeaderLength + 2 * full)..]).ToArray();

        Assert.Throws<EnvelopeIntegrityException>(() => Open(cut, key, name, expected: null));
    }

    [Fact]
    public void SwappingTwoSegments_IsDetected()
    {
        var (sealedBytes, key, name, length) = SealedSample(3 * Segment + 100);
        var full = Segment + SegmentedEnvelope.TagLength;
        var first = sealedBytes.AsSpan(SegmentedEnvelope.HeaderLength, full).ToArray();
        sealedBytes.AsSpan(SegmentedEnvelope.HeaderLength + full, full).CopyTo(sealedBytes.AsSpan(SegmentedEnvelope.HeaderLength));
        first.CopyTo(sealedBytes.AsSpan(SegmentedEnvelope.HeaderLength + full));

        Assert.Throws<EnvelopeIntegrityException>(() => Open(sealedBytes, key, name, length));
    }

    [Fact]
    public void TheCiphertextOfAnotherObject_DoesNotOpenUnderThisName()
    {
        var (sealedBytes, key, _, length) = SealedSample(2 * Segment);

        Assert.Throws<EnvelopeIntegrityException>(() => Open(sealedBytes, key, ObjectName.NewRandom(), length));
    }

    [Fact]
    public void CutRightAfterAFullMiddleSegment_IsDetected()
    {
        // The remaining segment authenticates as a middle segment, so the missing final one is noticed.
        var (sealedBytes, key, name, _) = SealedSample(2 * Segment);
        var firstOnly = sealedBytes[..(SegmentedEnvelope.HeaderLength + Segment + SegmentedEnvelope.TagLength)];

        Assert.Throws<EnvelopeIntegrityException>(() => Open(firstOnly, key, name, expected: null));
    }

    [Fact]
    public void BytesAfterTheFinalSegment_AreNeverRead()
    {
        var (sealedBytes, key, name, length) = SealedSample(Segment + 5);
        var padded = sealedBytes.Concat(RandomNumberGenerator.GetBytes(999)).ToArray();

        Assert.Equal(length, Open(padded, key, name, length).Length);
    }

    [Fact]
    public void AWrongExpectedLength_IsAnIntegrityFailure()
    {
        var (sealedBytes, key, name, length) = SealedSample(Segment + 5);

        Assert.Throws<EnvelopeIntegrityException>(() => Open(sealedBytes, key, name, length + 1));
    }

    private static (byte[] Sealed, DataKey Key, ObjectName Name, int Length) SealedSample(int length)
    {
        var key = DataKey.CreateRandom();
        var name = ObjectName.NewRandom();
        return (Seal(RandomNumberGenerator.GetBytes(length), key, name), key, name, length);
    }

    private static byte[] Seal(byte[] plaintext, DataKey key, ObjectName name)
    {
        using var output = new MemoryStream();
        using (var envelope = new EnvelopeEncryptingStream(output, key, name.ToBytes(), Segment, leaveOpen: true))
        {
            envelope.Write(plaintext);
            envelope.Complete();
        }

        return output.ToArray();
    }

    private static byte[] Open(byte[] sealedBytes, DataKey key, ObjectName name, long? expected)
    {
        using var input = new MemoryStream(sealedBytes);
        using var envelope = new EnvelopeDecryptingStream(input, key, name.ToBytes(), expected);
        using var output = new MemoryStream();
        envelope.CopyTo(output);
        return output.ToArray();
    }
}
