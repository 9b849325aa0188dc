using System.Security.Cryptography;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

public sealed class WatermarkPayloadTests
{
    private static readonly DateTimeOffset Time = DateTimeOffset.FromUnixTimeSeconds(1_790_000_000);

    [Fact]
    public void ASeal_IsAtMost504Bits_AndAFingerprint304()
    {
        using var keys = new WatermarkKeys(WatermarkTesting.Key);

        var seal = WatermarkPayload.CreateSeal(new SealFields(new string('h', 32), "St Olav", Time), keys, [1, 2, 3], [4, 5, 6]);
        var fingerprint = WatermarkPayload.CreateFingerprint(new FingerprintFields("consumer", "request", Time), keys);

        Assert.Equal(504, 8 * seal.Length);
        Assert.Equal(304, 8 * fingerprint.Length);
        Assert.True(8 * seal.Length + PredictionErrorExpansion.OverheadBits < 8 * PredictionErrorExpansion.MaxMessageBytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0123456789012345678901234567890123")]
    [InlineData("with space")]
    [InlineData("hé")]
    public async Task HandlesThatAreNotShortPrintableAscii_AreRejected(string handle)
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await SyntheticDicom.CreateAsync(new ImageSpec());

        Assert.Throws<ArgumentException>(() => watermarker.Seal(file, new SealFields(handle, "St Olav", Time)));
    }

    [Fact]
    public void AFingerprintWithAnyBitFlipped_DoesNotAuthenticate()
    {
        using var keys = new WatermarkKeys(WatermarkTesting.Key);
        var message = WatermarkPayload.CreateFingerprint(new FingerprintFields("consumer", "request", Time), keys);
        Assert.True(WatermarkPayload.TryReadFingerprint(message, keys, out var payload));
        Assert.Equal(Time, payload.Time);

        for (var bit = 0; bit < 8 * message.Length; bit++)
        {
            var forged = (byte[])message.Clone();
            forged[bit / 8] ^= (byte)(0x80 >> (bit % 8));
            Assert.False(WatermarkPayload.TryReadFingerprint(forged, keys, out _), $"bit {bit}");
        }
    }

    [Fact]
    public void ASealWithAnyBitFlipped_DoesNotVerify_NorWithOtherPixelsOrHeader()
    {
        using var keys = new WatermarkKeys(WatermarkTesting.Key);
        byte[] header = [1, 2, 3], pixels = [4, 5, 6, 7];
        var message = WatermarkPayload.CreateSeal(new SealFields("h1", "St Olav", Time), keys, header, pixels);
        Assert.True(WatermarkPayload.VerifySeal(message, keys, header, pixels));

        for (var bit = 0; bit < 8 * message.Length; bit++)
        {
            var forged = (byte[])message.Clone();
            forged[bit / 8] ^= (byte)(0x80 >> (bit % 8));
            Assert.False(WatermarkPayload.VerifySeal(forged, keys, header, pixels), $"bit {bit}");
        }

        Assert.False(WatermarkPayload.VerifySeal(message, keys, header, [4, 5, 6, 8]));
        Assert.False(WatermarkPayload.VerifySeal(message, keys, [1, 2, 4], pixels));
        Assert.False(WatermarkPayload.VerifySeal(message, keys, [1, 2], [3, 4, 5, 6, 7]));
        using var other = new WatermarkKeys(WatermarkTesting.OtherKey);
        Assert.False(WatermarkPayload.VerifySeal(message, other, header, pixels));
    }

    [Fact]
    public void TimesBefore1970_AreRejected_AndLaterOnesRoundTripToTheSecond()
    {
        using var keys = new WatermarkKeys(WatermarkTesting.Key);

        Assert.Throws<ArgumentOutOfRangeException>(() => WatermarkPayload.CreateFingerprint(new FingerprintFields("c", "r", DateTimeOffset.FromUnixTimeSeconds(-1)), keys));
        foreach (var time in new[] { DateTimeOffset.UnixEpoch, DateTimeOffset.FromUnixTimeSeconds(uint.MaxValue + 1L), DateTimeOffset.MaxValue })
        {
            Assert.True(WatermarkPayload.TryReadFingerprint(WatermarkPayload.CreateFingerprint(new FingerprintFields("c", "r", time), keys), keys, out var payload));
            Assert.Equal(time.ToUnixTimeSeconds(), payload.Time.ToUnixTimeSeconds());
        }
    }

    [Fact]
    public void Keys_AreDerivedPerPurpose_AndShortKeysAreRefused()
    {
        using var keys = new WatermarkKeys(WatermarkTesting.Key);
        var derived = new[] { keys.EmbeddingKey, keys.SealKey, keys.FingerprintKey, keys.IdentityTagKey };

        Assert.Equal(4, derived.Select(Convert.ToHexString).Distinct().Count());
        Assert.DoesNotContain(derived, k => k.AsSpan().SequenceEqual(WatermarkTesting.Key));
        Assert.NotEqual(keys.Tag("origin", "St Olav"), keys.Tag("consumer", "St Olav"));
        Assert.Throws<CryptographicException>(() => new WatermarkKeys(new byte[31]));
    }

    [Fact]
    public async Task TheBoundHeader_ChangesWithEachBoundField_AndOnlyThose()
    {
        var file = await SyntheticDicom.CreateAsync(new ImageSpec());
        var baseline = SealBinding.Serialize(file);

        foreach (var tag in SealBinding.Tags)
        {
            var copy = await WatermarkTesting.CopyAsync(file);
            copy.Dataset.Set(DicomElement.Create(tag, DicomVR.UN, "changed"u8.ToArray()));
            Assert.False(baseline.AsSpan().SequenceEqual(SealBinding.Serialize(copy)), tag.ToString());
        }

        var renamed = await WatermarkTesting.CopyAsync(file);
        renamed.Dataset.Set(DicomElement.Text(DicomTag.PatientName, DicomVR.PN, "Other^Name"));
        Assert.True(baseline.AsSpan().SequenceEqual(SealBinding.Serialize(renamed)));
    }
}
