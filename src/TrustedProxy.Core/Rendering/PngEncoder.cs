using System.Buffers.Binary;
using System.IO.Compression;

namespace TrustedProxy.Rendering;

/// <summary>A minimal PNG writer (8-bit grey or RGB, no filtering), enough for rendered DICOM frames.</summary>
internal static class PngEncoder
{
    public static byte[] Encode(int width, int height, int channels, ReadOnlySpan<byte> pixels)
    {
        if (channels is not (1 or 3) || pixels.Length != width * height * channels)
        {
            throw new ArgumentException("pixels must be width × height × channels bytes, with 1 or 3 channels");
        }

        using var output = new MemoryStream();
        output.Write(PngChunks.Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;                          // bit depth
        header[9] = channels == 1 ? (byte)0 : (byte)2; // greyscale or truecolour
        PngChunks.Write(output, "IHDR", header);

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var stride = width * channels;
            for (var row = 0; row < height; row++)
            {
                zlib.WriteByte(0); // filter type None
                zlib.Write(pixels.Slice(row * stride, stride));
            }
        }

        PngChunks.Write(output, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        PngChunks.Write(output, "IEND", []);
        return output.ToArray();
    }
}
