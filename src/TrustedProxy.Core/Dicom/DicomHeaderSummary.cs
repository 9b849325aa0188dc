using System.Globalization;
using System.Text;

namespace TrustedProxy.Dicom;

/// <summary>
/// The handful of attributes the proxy indexes a record by, read while the whole file is walked
/// (so a truncated or malformed file is refused before anything is stored).
/// </summary>
public sealed record DicomHeaderSummary(
    string TransferSyntaxUid,
    string? SopClassUid,
    string? SopInstanceUid,
    string? StudyInstanceUid,
    string? SeriesInstanceUid,
    string? PatientId,
    string? Modality,
    DateOnly? StudyDate)
{
    // Identifying values are short strings; anything longer than this at these tags is malformed.
    private const int MaxIndexedValueLength = 1024;

    /// <summary>Walks an entire Part 10 stream, collecting the indexed attributes from the top-level data set.</summary>
    public static async Task<DicomHeaderSummary> ReadAsync(Stream stream, DicomReaderLimits limits, CancellationToken cancellationToken)
    {
        await using var reader = new DicomStreamReader(stream, limits);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        string? sopClass = null, sopInstance = null, study = null, series = null, patientId = null, modality = null, studyDate = null;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } token)
        {
            if (token.Kind != DicomTokenKind.Element || token.Depth != 0 || !IsIndexed(token.Tag))
            {
                continue;
            }

            if (token.Length > MaxIndexedValueLength)
            {
                throw new DicomFormatException(DicomFormatProblem.Malformed, token.Offset, $"{token.Tag} is {token.Length} bytes long, too long for an identifier");
            }

            var text = Text(await reader.ReadValueAsync(MaxIndexedValueLength, cancellationToken).ConfigureAwait(false));
            if (token.Tag == DicomTag.SopClassUid) sopClass = text;
            else if (token.Tag == DicomTag.SopInstanceUid) sopInstance = text;
            else if (token.Tag == DicomTag.StudyInstanceUid) study = text;
            else if (token.Tag == DicomTag.SeriesInstanceUid) series = text;
            else if (token.Tag == DicomTag.PatientId) patientId = text;
            else if (token.Tag == DicomTag.Modality) modality = text;
            else if (token.Tag == DicomTag.StudyDate) studyDate = text;
        }

        return new DicomHeaderSummary(
            meta.TransferSyntax.Uid,
            sopClass,
            sopInstance,
            study,
            series,
            patientId,
            modality,
            ParseDate(studyDate));
    }

    private static bool IsIndexed(DicomTag tag) =>
        tag == DicomTag.SopClassUid || tag == DicomTag.SopInstanceUid || tag == DicomTag.StudyInstanceUid ||
        tag == DicomTag.SeriesInstanceUid || tag == DicomTag.PatientId || tag == DicomTag.Modality || tag == DicomTag.StudyDate;

    // Identifiers and codes are in the default repertoire or ISO-IR 100 in practice; Latin-1 maps
    // every byte to one character, so the value round-trips whatever the declared character set.
    private static string? Text(byte[] value)
    {
        var text = Encoding.Latin1.GetString(value).TrimEnd('\0', ' ').TrimStart(' ');
        return text.Length == 0 ? null : text;
    }

    private static DateOnly? ParseDate(string? value) =>
        value is not null && DateOnly.TryParseExact(value, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date : null;
}
