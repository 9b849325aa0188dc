using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Watermarking.Research;

namespace TrustedProxy.Tests.Watermarking.Research;

/// <summary>Keys and generated images for the chaos-cipher tests.</summary>
internal static class ResearchImages
{
    public static readonly byte[] Key = SHA256.HashData(Encoding.ASCII.GetBytes("TrustedProxy chaos cipher tests: key"));

    /// <summary>A smooth diagonal ramp over the full range, each channel shifted: the strongly correlated image of the papers.</summary>
    public static int[] Gradient(ChaosFrameShape shape)
    {
        var samples = new int[shape.SampleCount];
        var max = (double)shape.Mask;
        var span = shape.Width + shape.Height - 2;
        for (var c = 0; c < shape.SamplesPerPixel; c++)
        {
            for (var y = 0; y < shape.Height; y++)
            {
                for (var x = 0; x < shape.Width; x++)
                {
                    var t = span == 0 ? 0 : (x + y + (c * 7.0)) / (span + (c * 7.0));
                    samples[(c * shape.PlaneLength) + (y * shape.Width) + x] = (int)(uint)Math.Round(t * max);
                }
            }
        }

        return samples;
    }

    public static int[] Noise(ChaosFrameShape shape, int seed)
    {
        var random = new Random(seed);
        var samples = new int[shape.SampleCount];
        for (var i = 0; i < samples.Length; i++)
        {
            samples[i] = (int)((uint)random.NextInt64(0, (long)shape.Mask + 1));
        }

        return samples;
    }

    public static int[] Encrypt(ChaoticImageCipher cipher, int[] plain, ChaosFrameShape shape)
    {
        var result = new int[plain.Length];
        cipher.Encrypt(plain, result, shape);
        return result;
    }

    public static int[] Decrypt(ChaoticImageCipher cipher, int[] encrypted, ChaosFrameShape shape)
    {
        var result = new int[encrypted.Length];
        cipher.Decrypt(encrypted, result, shape);
        return result;
    }
}
