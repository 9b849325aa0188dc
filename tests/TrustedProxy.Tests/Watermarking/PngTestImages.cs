using TrustedProxy.Rendering;
using System.Buffers.Binary;
using System.IO.Compression;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>Writes and transforms decoded PNG images for the tests, including an interlaced (Adam7) writer the product does not need.</summary>
internal static class PngTestImages
{
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    public static byte[] Write(PngImage image, PngFilter? filter = null) =>
        PngWriter.Write(image.Width, image.Height, Depth(image), image.Channels, Raw(image, 0, 0, 1, 1), filter);

    public static PngImage Crop(PngImage image, int columns, int rows)
    {
        int width = image.Width - columns, height = image.Height - rows;
        var samples = new ushort[width * height * image.Channels];
        for (var y = 0; y < height; y++)
        {
            image.Samples.AsSpan(((y + rows) * image.Width + columns) * image.Channels, width * image.Channels).CopyTo(samples.AsSpan(y * width * image.Channels));
        }

        return image with { Width = width, Height = height, Samples = samples };
    }

    public static PngImage Downsample(PngImage image)
    {
        int width = image.Width / 2, height = image.Height / 2, channels = image.Channels;
        var samples = new ushort[width * height * channels];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < channels; c++)
                {
                    // Box filter: the mean of each 2×2 block.
                    int Sample(int dx, int dy) => image.Samples[((2 * y + dy) * image.Width + 2 * x + dx) * channels + c];
                    samples[(y * width + x) * channels + c] = (ushort)((Sample(0, 0) + Sample(1, 0) + Sample(0, 1) + Sample(1, 1) + 2) / 4);
                }
            }
        }

        return image with { Width = width, Height = height, Samples = samples };
    }

    /// <summary>The same samples as an Adam7-interlaced PNG (filter None), as some tools write.</summary>
    public static byte[] Interlaced(PngImage image)
    {
        var depth = Depth(image);
        using var output = new MemoryStream();
        output.Write(PngChunks.Signature);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), image.Height);
        header[8] = (byte)depth;
        header[9] = image.Channels == 1 ? (byte)0 : (byte)2;
        header[12] = 1;
        PngChunks.Write(output, "IHDR", header);
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            foreach (var (x0, y0, dx, dy) in Adam7)
            {
                int w = (image.Width - x0 + dx - 1) / dx, h = (image.Height - y0 + dy - 1) / dy;
                if (w <= 0 || h <= 0)
                {
                    continue;
                }

                var raw = Raw(image, x0, y0, dx, dy);
                var stride = raw.Length / h;
                for (var row = 0; row < h; row++)
                {
                    zlib.WriteByte(0);
                    zlib.Write(raw, row * stride, stride);
                }
            }
        }

        PngChunks.Write(output, "IDAT", compressed.ToArray());
        PngChunks.Write(output, "IEND", []);
        return output.ToArray();
    }

    private static int Depth(PngImage image) => image.BitDepth <= 8 ? 8 : 16;

    private static byte[] Raw(PngImage image, int x0, int y0, int dx, int dy)
    {
        int w = (image.Width - x0 + dx - 1) / dx, h = (image.Height - y0 + dy - 1) / dy, channels = image.Channels;
        var bytes = Depth(image) / 8;
        var raw = new byte[w * h * channels * bytes];
        var at = 0;
        for (var y = y0; y < image.Height; y += dy)
        {
            for (var x = x0; x < image.Width; x += dx)
            {
                for (var c = 0; c < channels; c++, at += bytes)
                {
                    var value = image.Samples[(y * image.Width + x) * channels + c];
                    if (bytes == 1)
                    {
                        raw[at] = (byte)value;
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(raw.AsSpan(at), value);
                    }
                }
            }
        }

        return raw;
    }
}
