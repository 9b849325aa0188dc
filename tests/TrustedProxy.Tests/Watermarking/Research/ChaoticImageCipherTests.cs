using TrustedProxy.Dicom;
using TrustedProxy.Tests.Watermarking;
using TrustedProxy.Watermarking;
using TrustedProxy.Watermarking.Research;

namespace TrustedProxy.Tests.Watermarking.Research;

/// <summary>The research chaos cipher is an exact, deterministic, key-dependent bijection on stored values.</summary>
public sealed class ChaoticImageCipherTests
{
    [Theory]
    [InlineData(256, 256, 1, 8)]
    [InlineData(64, 48, 3, 8)]
    [InlineData(97, 61, 1, 12)]
    [InlineData(40, 30, 3, 12)]
    [InlineData(128, 128, 1, 16)]
    [InlineData(33, 17, 1, 32)]
    [InlineData(1, 1, 1, 1)]
    public void Decrypt_OfEncrypt_GivesBackTheGradientAndNoise(int width, int height, int samplesPerPixel, int bits)
    {
        var shape = new ChaosFrameShape(width, height, samplesPerPixel, bits);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        foreach (var plain in new[] { ResearchImages.Gradient(shape), ResearchImages.Noise(shape, bits) })
        {
            var encrypted = ResearchImages.Encrypt(cipher, plain, shape);
            Assert.All(encrypted, v => Assert.InRange((uint)v, 0u, shape.Mask));
            Assert.Equal(plain, ResearchImages.Decrypt(cipher, encrypted, shape));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Decrypt_OfEncrypt_GivesBackThePlaintext_ForAnyNumberOfRounds(int rounds)
    {
        var shape = new ChaosFrameShape(50, 40, 1, 10);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key, rounds);
        var plain = ResearchImages.Gradient(shape);
        Assert.Equal(plain, ResearchImages.Decrypt(cipher, ResearchImages.Encrypt(cipher, plain, shape), shape));
    }

    [Fact]
    public void UshortSamples_RoundTrip_At16Bits()
    {
        var shape = new ChaosFrameShape(64, 64, 1, 16);
        var plain = ResearchImages.Gradient(shape).Select(v => (ushort)v).ToArray();
        var encrypted = new ushort[plain.Length];
        var decrypted = new ushort[plain.Length];
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        cipher.Encrypt(plain, encrypted, shape);
        cipher.Decrypt(encrypted, decrypted, shape);
        Assert.NotEqual(plain, encrypted);
        Assert.Equal(plain, decrypted);
    }

    [Fact]
    public void Encrypt_IsDeterministic_ForAKeyFrameAndContext()
    {
        var shape = new ChaosFrameShape(32, 32, 1, 8);
        var plain = ResearchImages.Gradient(shape);
        using var first = new ChaoticImageCipher(ResearchImages.Key);
        using var second = new ChaoticImageCipher(ResearchImages.Key);
        Assert.Equal(ResearchImages.Encrypt(first, plain, shape), ResearchImages.Encrypt(second, plain, shape));
    }

    [Fact]
    public void Encrypt_DependsOnFrameAndContext()
    {
        var shape = new ChaosFrameShape(32, 32, 1, 8);
        var plain = ResearchImages.Gradient(shape);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var frame0 = new int[plain.Length];
        var frame1 = new int[plain.Length];
        var otherContext = new int[plain.Length];
        cipher.Encrypt(plain, frame0, shape, frame: 0);
        cipher.Encrypt(plain, frame1, shape, frame: 1);
        cipher.Encrypt(plain, otherContext, shape, frame: 0, context: "export 42"u8);
        Assert.True(CipherMetrics.Npcr(frame0, frame1) > 99);
        Assert.True(CipherMetrics.Npcr(frame0, otherContext) > 99);
    }

    [Fact]
    public void Decrypt_WithAOneBitDifferentKey_GivesNoise()
    {
        var shape = new ChaosFrameShape(128, 128, 1, 8);
        var plain = ResearchImages.Gradient(shape);
        var wrongKey = (byte[])ResearchImages.Key.Clone();
        wrongKey[31] ^= 0x80;
        using var right = new ChaoticImageCipher(ResearchImages.Key);
        using var wrong = new ChaoticImageCipher(wrongKey);
        var decrypted = ResearchImages.Decrypt(wrong, ResearchImages.Encrypt(right, plain, shape), shape);
        Assert.True(CipherMetrics.Npcr(plain, decrypted) > 99);
        Assert.True(CipherMetrics.Correlation(decrypted, shape, new Random(1)).MaxAbsolute < 0.05);
    }

    [Fact]
    public void Constructor_RefusesAKeyThatIsNot256Bits()
    {
        Assert.Throws<ArgumentException>(() => new ChaoticImageCipher(new byte[16]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChaoticImageCipher(ResearchImages.Key, rounds: 0));
    }

    [Fact]
    public void Encrypt_RefusesSamplesOutsideTheStoredRange()
    {
        var shape = new ChaosFrameShape(2, 2, 1, 12);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var error = Assert.Throws<ArgumentException>(() => cipher.Encrypt(new[] { 0, 1, 4096, 3 }, new int[4], shape));
        Assert.Contains("outside [0, 4095]", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => cipher.Encrypt(new[] { 0, 1, -1, 3 }, new int[4], shape));
    }

    [Fact]
    public void Encrypt_AfterDispose_Throws()
    {
        var shape = new ChaosFrameShape(2, 2, 1, 8);
        var cipher = new ChaoticImageCipher(ResearchImages.Key);
        cipher.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cipher.Encrypt(new int[4], new int[4], shape));
    }

    /// <summary>Every native corpus image the watermarking reads: Pixel Data encrypted and decrypted frame by frame comes back byte for byte.</summary>
    [Fact]
    public void EncryptPixelData_ThenDecrypt_RestoresEveryNativeCorpusImageBitExact()
    {
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var checkedImages = 0;
        foreach (var (name, file) in WatermarkTesting.NativeCorpusImages)
        {
            if (!PixelImage.TryFromDicom(file, out var image, out _))
            {
                continue;
            }

            var original = image.PixelData.ToArray();
            var encrypted = cipher.EncryptPixelData(image, "corpus"u8);
            var decrypted = cipher.DecryptPixelData(image.WithPixelData(encrypted), "corpus"u8);
            Assert.True(original.AsSpan().SequenceEqual(decrypted), name);
            if (image.PixelsPerFrame >= 64)
            {
                Assert.False(original.AsSpan().SequenceEqual(encrypted), $"{name} was not changed by encryption");
            }

            checkedImages++;
        }

        Assert.True(checkedImages >= 20, $"only {checkedImages} corpus images were checked");
    }

    [Fact]
    public async Task EncryptPixelData_OfCtSmall_LooksLikeNoise()
    {
        var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var image = PixelImage.FromDicom(file);
        using var cipher = new ChaoticImageCipher(ResearchImages.Key);
        var encrypted = image.WithPixelData(cipher.EncryptPixelData(image));
        var buffer = encrypted.CreateFrameBuffer();
        encrypted.ReadFrame(0, buffer);
        var shape = new ChaosFrameShape(image.Columns, image.Rows, 1, image.BitsStored);
        var half = 1 << (image.BitsStored - 1);
        var samples = buffer.Values.Take(buffer.Length).Select(v => v + half).ToArray();
        Assert.True(CipherMetrics.Correlation(samples, shape, new Random(3)).MaxAbsolute < 0.1);
        Assert.True(CipherMetrics.Histogram(samples, image.BitsStored, 0.001).IsUniform);
    }
}
