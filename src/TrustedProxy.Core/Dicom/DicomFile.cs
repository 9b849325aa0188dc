using System.IO.Compression;

namespace TrustedProxy.Dicom;

/// <summary>
/// A whole DICOM Part 10 file in memory: preamble, file meta information, data set. Reading then
/// writing an unmodified file gives back the same bytes: values, lengths, padding, element order,
/// defined or undefined lengths and the encoding the data set really used are all kept. For large
/// files read and write as streams with <see cref="DicomFileReader"/> and <see cref="DicomStreamWriter"/>.
/// </summary>
public sealed class DicomFile
{
    public DicomFile(byte[] preamble, DicomDataset meta, DicomDataset dataset, TransferSyntax transferSyntax, byte[]? deflatedPayload = null)
    {
        Preamble = preamble;
        Meta = meta;
        Dataset = dataset;
        TransferSyntax = transferSyntax;
        DeflatedPayload = deflatedPayload;
    }

    /// <summary>The 128 bytes before "DICM".</summary>
    public byte[] Preamble { get; set; }

    /// <summary>Group 0002, always explicit VR little endian.</summary>
    public DicomDataset Meta { get; }

    public DicomDataset Dataset { get; }

    public TransferSyntax TransferSyntax { get; }

    /// <summary>For a deflated file, the compressed data set as read; written back when the data set is unchanged.</summary>
    internal byte[]? DeflatedPayload { get; }

    public static async Task<DicomFile> ReadAsync(Stream stream, DicomReaderLimits? limits = null, CancellationToken cancellationToken = default)
    {
        await using var reader = new DicomFileReader(stream, limits, keepDeflatedPayload: true);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        var dataset = new DicomDataset(reader.DataSetEncoding);
        while (await reader.ReadElementAsync(dataset, cancellationToken).ConfigureAwait(false) is { } element)
        {
            dataset.Append(element);
        }

        return new DicomFile(meta.Preamble, new DicomDataset(DicomEncoding.ExplicitLittle, meta.Elements), dataset, meta.TransferSyntax, reader.DeflatedPayload);
    }

    /// <summary>
    /// Reads a file held in memory without copying its large values: every top-level value over
    /// 64 KiB (the native Pixel Data above all) is a window on <paramref name="buffer"/>, and
    /// the offset returned says where the Pixel Data value starts, so that a caller
    /// can change the pixels in the buffer itself and keep the buffer as the changed file. Null for
    /// what has no such window: a deflated data set, or encapsulated (compressed) Pixel Data.
    /// </summary>
    internal static async Task<(DicomFile File, int PixelDataOffset)?> ReadInPlaceAsync(byte[] buffer, int length, DicomReaderLimits? limits = null, CancellationToken cancellationToken = default)
    {
        const long Window = 64 * 1024;
        await using var reader = new DicomFileReader(new MemoryStream(buffer, 0, length, writable: false), limits, deferAbove: Window, keepDeflatedPayload: true);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        if (meta.TransferSyntax.Deflated)
        {
            return null;
        }

        var dataset = new DicomDataset(reader.DataSetEncoding);
        var pixelDataOffset = -1;
        while (await reader.ReadElementAsync(dataset, cancellationToken).ConfigureAwait(false) is { } element)
        {
            if (!element.IsDeferred)
            {
                dataset.Append(element);
                continue;
            }

            if (element.Fragments is not null || reader.Offset + element.DeferredLength > length)
            {
                return null;
            }

            // The reader stands at the value's first byte; the next read skips the value in the stream.
            var offset = checked((int)reader.Offset);
            dataset.Append(DicomElement.Create(element.Tag, element.VR, buffer.AsMemory(offset, (int)element.DeferredLength)));
            pixelDataOffset = element.Tag == DicomTag.PixelData ? offset : pixelDataOffset;
        }

        return pixelDataOffset < 0
            ? null
            : (new DicomFile(meta.Preamble, new DicomDataset(DicomEncoding.ExplicitLittle, meta.Elements), dataset, meta.TransferSyntax), pixelDataOffset);
    }

    /// <summary>
    /// Reads an upload held in memory once, for both things the upload path needs of it: its header,
    /// as <see cref="DicomHeader.ReadAsync(Stream, DicomReaderLimits, CancellationToken)"/> reads it (every top-level value up to
    /// <see cref="DicomHeader.BulkDataThreshold"/>, the same limits, the same errors), and the whole
    /// file for sealing, as <see cref="ReadInPlaceAsync"/> reads it (larger values are windows on
    /// <paramref name="buffer"/>), with the offset of native Pixel Data of any size, or -1 when
    /// there is none or its bytes in the buffer are not its value as read (a big-endian file).
    /// Null for what has no window: a deflated data set, or large encapsulated Pixel Data; the
    /// caller reads those as before.
    /// </summary>
    internal static async Task<(DicomFile File, DicomHeader Header, int PixelDataOffset)?> ReadUploadAsync(byte[] buffer, int length, DicomReaderLimits limits, CancellationToken cancellationToken = default)
    {
        await using var reader = new DicomFileReader(new MemoryStream(buffer, 0, length, writable: false), limits, deferAbove: DicomHeader.BulkDataThreshold);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        if (meta.TransferSyntax.Deflated)
        {
            return null;
        }

        var dataset = new DicomDataset(reader.DataSetEncoding);
        var header = new DicomDataset(reader.DataSetEncoding);
        var pixelDataOffset = -1;
        long held = 0;
        while (await reader.ReadElementAsync(dataset, cancellationToken).ConfigureAwait(false) is { } element)
        {
            if (!element.IsDeferred)
            {
                held += DicomStreamWriter.EncodedSize(element, dataset.Encoding);
                if (held > limits.MaxHeaderBytes)
                {
                    throw new DicomFormatException(DicomFormatProblem.LimitExceeded, reader.Offset, $"the header (all but bulk data) exceeds the limit of {limits.MaxHeaderBytes} bytes");
                }

                dataset.Append(element);
                header.Append(element);

                // A small native Pixel Data value was copied; where it lies is where the reader now stands, less its length.
                if (element.Tag == DicomTag.PixelData && element.Fragments is null && reader.Offset - element.Value.Length is var start && start >= 0 &&
                    buffer.AsSpan(checked((int)start), element.Value.Length).SequenceEqual(element.Value.Span))
                {
                    pixelDataOffset = (int)start;
                }

                continue;
            }

            if (element.Fragments is not null || reader.Offset + element.DeferredLength > length)
            {
                return null;
            }

            // The reader stands at the value's first byte; the next read skips the value in the stream.
            var offset = checked((int)reader.Offset);
            dataset.Append(DicomElement.Create(element.Tag, element.VR, buffer.AsMemory(offset, (int)element.DeferredLength)));
            pixelDataOffset = element.Tag == DicomTag.PixelData ? offset : pixelDataOffset;
        }

        var file = new DicomFile(meta.Preamble, new DicomDataset(DicomEncoding.ExplicitLittle, meta.Elements), dataset, meta.TransferSyntax);
        return (file, new DicomHeader(meta, header), pixelDataOffset);
    }

    public static async Task<DicomFile> ReadAsync(string path, DicomReaderLimits? limits = null, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await ReadAsync(file, limits, cancellationToken).ConfigureAwait(false);
    }

    public async Task WriteAsync(Stream output, CancellationToken cancellationToken = default)
    {
        var writer = new DicomStreamWriter(output);
        await writer.WritePreambleAndMetaAsync(Preamble, Meta, cancellationToken).ConfigureAwait(false);
        if (!TransferSyntax.Deflated)
        {
            await writer.WriteDatasetAsync(Dataset, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var plain = new MemoryStream();
        await new DicomStreamWriter(plain).WriteDatasetAsync(Dataset, cancellationToken).ConfigureAwait(false);
        if (DeflatedPayload is not null && Inflate(DeflatedPayload).AsSpan().SequenceEqual(plain.GetBuffer().AsSpan(0, (int)plain.Length)))
        {
            // Deflate streams are not unique: keep the original compressed bytes while the data set is unchanged.
            await output.WriteAsync(DeflatedPayload, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            plain.Position = 0;
            await plain.CopyToAsync(deflate, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<byte[]> ToBytesAsync(CancellationToken cancellationToken = default)
    {
        using var output = new MemoryStream();
        await WriteAsync(output, cancellationToken).ConfigureAwait(false);
        return output.ToArray();
    }

    private static byte[] Inflate(byte[] payload)
    {
        using var inflated = new MemoryStream();
        using (var deflate = new DeflateStream(new MemoryStream(payload), CompressionMode.Decompress))
        {
            deflate.CopyTo(inflated);
        }

        return inflated.ToArray();
    }
}
