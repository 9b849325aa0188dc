using System.Globalization;

namespace TrustedProxy.Dicom;

/// <summary>
/// A file's meta information and header: every top-level element except large values (pixel data
/// and other bulk data), read while the whole file is walked, so that a truncated or malformed file
/// is refused before anything is stored. The proxy indexes records by it, keeps it (encrypted) as the
/// record's metadata for DICOMweb queries, and never holds the bulk data to get it.
/// </summary>
public sealed class DicomHeader
{
    /// <summary>Top-level values above this size are bulk data: streamed past, not held.</summary>
    public const int BulkDataThreshold = 64 * 1024;

    internal DicomHeader(FileMetaInformation meta, DicomDataset dataset)
    {
        Meta = meta;
        Dataset = dataset;
    }

    public FileMetaInformation Meta { get; }

    public DicomDataset Dataset { get; }

    public string TransferSyntaxUid => Meta.TransferSyntax.Uid;

    public string? SopClassUid => Dataset.GetString(DicomTag.SopClassUid);

    public string? SopInstanceUid => Dataset.GetString(DicomTag.SopInstanceUid);

    public string? StudyInstanceUid => Dataset.GetString(DicomTag.StudyInstanceUid);

    public string? SeriesInstanceUid => Dataset.GetString(DicomTag.SeriesInstanceUid);

    public string? PatientId => Dataset.GetString(DicomTag.PatientId)?.TrimStart(' ');

    public string? Modality => Dataset.GetString(DicomTag.Modality);

    public string? AccessionNumber => Dataset.GetString(DicomTag.AccessionNumber)?.Trim();

    public int? SeriesNumber => Dataset.GetNumber(DicomTag.SeriesNumber) is { } n ? (int)n : null;

    public int? InstanceNumber => Dataset.GetNumber(DicomTag.InstanceNumber) is { } n ? (int)n : null;

    public DateOnly? StudyDate =>
        Dataset.GetString(DicomTag.StudyDate) is { } text && DateOnly.TryParseExact(text.Trim(), "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null;

    /// <summary>
    /// The last group whose attributes a decision about a record reads (patient 0010, study and
    /// series 0008/0020): once an element of a later group is read, in a file whose elements are in
    /// ascending order as Part 10 requires, every such attribute has been seen.
    /// </summary>
    public const ushort LastIdentifyingGroup = 0x0020;

    /// <summary>Walks an entire Part 10 stream to its end and returns its header.</summary>
    public static Task<DicomHeader> ReadAsync(Stream stream, DicomReaderLimits limits, CancellationToken cancellationToken) =>
        ReadAsync(stream, limits, identified: null, cancellationToken);

    /// <summary>
    /// Walks an entire Part 10 stream to its end and returns its header; <paramref name="identified"/>
    /// runs once, with the header read so far, as soon as the identifying attributes are all read
    /// (the first element past <see cref="LastIdentifyingGroup"/>, or the end): before the bulk data
    /// that follows them is read, so a caller can decide about the file before it pays for its pixels.
    /// </summary>
    public static async Task<DicomHeader> ReadAsync(Stream stream, DicomReaderLimits limits, Func<DicomHeader, CancellationToken, Task>? identified, CancellationToken cancellationToken)
    {
        await using var reader = new DicomFileReader(stream, limits, deferAbove: BulkDataThreshold);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        var dataset = new DicomDataset(reader.DataSetEncoding);
        long held = 0;
        while (await reader.ReadElementAsync(dataset, cancellationToken).ConfigureAwait(false) is { } element)
        {
            if (identified is not null && element.Tag.Group > LastIdentifyingGroup)
            {
                // This element's value, if deferred, is read only by the next read.
                await identified(new DicomHeader(meta, dataset), cancellationToken).ConfigureAwait(false);
                identified = null;
            }

            // A deferred (bulk) value is skipped by the next read; everything else is held.
            if (element.IsDeferred)
            {
                continue;
            }

            held += DicomStreamWriter.EncodedSize(element, dataset.Encoding);
            if (held > limits.MaxHeaderBytes)
            {
                throw new DicomFormatException(DicomFormatProblem.LimitExceeded, reader.Offset, $"the header (all but bulk data) exceeds the limit of {limits.MaxHeaderBytes} bytes");
            }

            dataset.Append(element);
        }

        if (identified is not null)
        {
            await identified(new DicomHeader(meta, dataset), cancellationToken).ConfigureAwait(false);
        }

        return new DicomHeader(meta, dataset);
    }

    /// <summary>
    /// The header as a small Part 10 file, for storage as metadata: binary values larger than
    /// <paramref name="maxBinaryValue"/> bytes (waveforms, icons inside sequences) are left out.
    /// </summary>
    public async Task<byte[]> ToMetadataFileAsync(int maxBinaryValue = 4096, CancellationToken cancellationToken = default)
    {
        var file = new DicomFile(new byte[128], new DicomDataset(DicomEncoding.ExplicitLittle, Meta.Elements), WithoutLargeBinaries(Dataset, maxBinaryValue, parent: null), Meta.TransferSyntax);
        return await file.ToBytesAsync(cancellationToken).ConfigureAwait(false);
    }

    private static DicomDataset WithoutLargeBinaries(DicomDataset dataset, int maxBinaryValue, DicomDataset? parent)
    {
        var copy = new DicomDataset(dataset.Encoding, parent: parent);
        foreach (var element in dataset)
        {
            // Pixel data of any size is bulk data (PS3.18 8.5.1), as are large binary values.
            if (element.Fragments is not null || element.Tag.Group == 0x7FE0 || (!element.VR.IsText && element.Sequence is null && element.Value.Length > maxBinaryValue))
            {
                continue;
            }

            if (element.Sequence is { } sequence)
            {
                var items = sequence.Items.Select(i => new DicomItem(WithoutLargeBinaries(i.Dataset, maxBinaryValue, copy), i.UndefinedLength)).ToList();
                copy.Append(DicomElement.Create(element.Tag, new DicomSequence(items, sequence.UndefinedLength), element.VR));
            }
            else
            {
                copy.Append(element);
            }
        }

        return copy;
    }
}
