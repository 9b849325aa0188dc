using System.Globalization;
using TrustedProxy.Dicom;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>
/// The QIDO-RS query parameters the proxy matches on (PS3.18 10.6.1.2): PatientID (with
/// IssuerOfPatientID, one patient; without, every patient with that ID), StudyDate (a
/// date or a range), StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, AccessionNumber,
/// ModalitiesInStudy / Modality, limit, offset, includefield. Keys may be keywords or tags
/// (<c>00100020</c>). Other keys are ignored, and the response says which in a Warning header.
/// </summary>
internal sealed record DicomWebQuery
{
    public const int DefaultLimit = 100;

    public string? PatientId { get; init; }

    public string? IssuerOfPatientId { get; init; }

    public string? StudyInstanceUid { get; init; }

    public string? SeriesInstanceUid { get; init; }

    public string? SopInstanceUid { get; init; }

    public string? AccessionNumber { get; init; }

    public string? Modality { get; init; }

    public DateOnly? StudyDateFrom { get; init; }

    public DateOnly? StudyDateTo { get; init; }

    public bool HasStudyDate => StudyDateFrom is not null || StudyDateTo is not null;

    public int Limit { get; init; } = DefaultLimit;

    public int Offset { get; init; }

    /// <summary>Attributes to add to each result (includefield), or every attribute held ("all").</summary>
    public IReadOnlySet<DicomTag> IncludeFields { get; init; } = new HashSet<DicomTag>();

    public bool IncludeAll { get; init; }

    public IReadOnlyList<string> Ignored { get; init; } = [];

    public static bool TryParse(IQueryCollection query, int maxLimit, out DicomWebQuery result, out string? error)
    {
        result = new DicomWebQuery();
        error = null;
        var ignored = new List<string>();
        var include = new HashSet<DicomTag>();
        var includeAll = false;
        foreach (var (key, values) in query)
        {
            var value = values.ToString();
            switch (Normalize(key))
            {
                case "PatientID": result = result with { PatientId = value }; break;
                case "IssuerOfPatientID": result = result with { IssuerOfPatientId = value }; break;
                case "StudyInstanceUID": result = result with { StudyInstanceUid = value }; break;
                case "SeriesInstanceUID": result = result with { SeriesInstanceUid = value }; break;
                case "SOPInstanceUID": result = result with { SopInstanceUid = value }; break;
                case "AccessionNumber": result = result with { AccessionNumber = value }; break;
                case "ModalitiesInStudy" or "Modality": result = result with { Modality = value }; break;
                case "StudyDate":
                    if (!TryParseRange(value, out var from, out var to))
                    {
                        error = "StudyDate must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either end may be open)";
                        return false;
                    }

                    result = result with { StudyDateFrom = from, StudyDateTo = to };
                    break;
                case "limit":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1)
                    {
                        error = "limit must be a positive whole number";
                        return false;
                    }

                    result = result with { Limit = Math.Min(limit, maxLimit) };
                    break;
                case "offset":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
                    {
                        error = "offset must be a whole number";
                        return false;
                    }

                    result = result with { Offset = offset };
                    break;
                case "includefield":
                    foreach (var field in values.SelectMany(v => (v ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
                    {
                        if (field == "all")
                        {
                            includeAll = true;
                        }
                        else if (Tag(field) is { } tag)
                        {
                            include.Add(tag);
                        }
                        else
                        {
                            ignored.Add($"includefield={field}");
                        }
                    }

                    break;
                case "fuzzymatching" or "view" or "profile":
                    break;
                default:
                    ignored.Add(key);
                    break;
            }
        }

        result = result with { IncludeFields = include, IncludeAll = includeAll, Ignored = ignored };
        return true;
    }

    /// <summary>A keyword or an eight-digit tag, as PS3.18 allows for attribute names in queries.</summary>
    public static DicomTag? Tag(string name)
    {
        if (name.Length == 8 && uint.TryParse(name, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
        {
            return DicomTag.FromValue(value);
        }

        return DicomDictionary.FindByKeyword(name)?.Tag;
    }

    private static string Normalize(string key) => Tag(key) is { } tag ? (DicomDictionary.Find(tag)?.Keyword ?? key) : key;

    private static bool TryParseRange(string value, out DateOnly? from, out DateOnly? to)
    {
        from = null;
        to = null;
        var parts = value.Split('-');
        if (parts.Length > 2 || (parts.Length == 2 && parts[0].Length == 0 && parts[1].Length == 0))
        {
            return false;
        }

        static bool Date(string text, out DateOnly? date)
        {
            date = null;
            if (text.Length == 0)
            {
                return true;
            }

            if (DateOnly.TryParseExact(text, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
            {
                date = parsed;
                return true;
            }

            return false;
        }

        if (parts.Length == 1)
        {
            if (!Date(parts[0], out from) || from is null)
            {
                return false;
            }

            to = from;
            return true;
        }

        return Date(parts[0], out from) && Date(parts[1], out to);
    }
}
