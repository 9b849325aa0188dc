using System.Globalization;
using Microsoft.Extensions.Options;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Records;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>
/// QIDO-RS (PS3.18 10.6): studies, series and instances the caller may see, matched on the index
/// and described from each record's sealed header, in the caller's view (original, or de-identified
/// with the de-identified UIDs and pseudonym). Answers application/dicom+json.
/// </summary>
internal static class QidoRs
{
    public enum Level
    {
        Study,
        Series,
        Instance,
    }

    private static readonly DicomTag[] StudyAttributes =
    [
        DicomTag.SpecificCharacterSet, DicomTag.StudyDate, new(0x0008, 0x0030), new(0x0008, 0x0050), new(0x0008, 0x0090), new(0x0008, 0x0201),
        new(0x0008, 0x1030), new(0x0010, 0x0010), DicomTag.PatientId, new(0x0010, 0x0030), new(0x0010, 0x0040), DicomTag.StudyInstanceUid, new(0x0020, 0x0010),
    ];

    private static readonly DicomTag[] SeriesAttributes =
    [
        DicomTag.SpecificCharacterSet, DicomTag.Modality, new(0x0008, 0x0201), new(0x0008, 0x103E), DicomTag.StudyInstanceUid, DicomTag.SeriesInstanceUid,
        new(0x0020, 0x0011), new(0x0040, 0x0244), new(0x0040, 0x0245), new(0x0040, 0x0275),
    ];

    private static readonly DicomTag[] InstanceAttributes =
    [
        DicomTag.SpecificCharacterSet, DicomTag.SopClassUid, DicomTag.SopInstanceUid, new(0x0008, 0x0201), DicomTag.StudyInstanceUid, DicomTag.SeriesInstanceUid,
        new(0x0020, 0x0013), new(0x0028, 0x0008), new(0x0028, 0x0010), new(0x0028, 0x0011), new(0x0028, 0x0100),
    ];

    private static readonly DicomTag ModalitiesInStudy = new(0x0008, 0x0061);
    private static readonly DicomTag InstanceAvailability = new(0x0008, 0x0056);
    private static readonly DicomTag RetrieveUrl = new(0x0008, 0x1190);
    private static readonly DicomTag StudyRelatedSeries = new(0x0020, 0x1206);
    private static readonly DicomTag StudyRelatedInstances = new(0x0020, 0x1208);
    private static readonly DicomTag SeriesRelatedInstances = new(0x0020, 0x1209);

    public static async Task<IResult> SearchAsync(HttpContext context, Level level, string? study, string? series, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy)
    {
        if (!DicomWebQuery.TryParse(context.Request.Query, options.Value.MaxSearchResults, out var q, out var error))
        {
            return Problem.Result(ProblemTypes.InvalidQuery, error!);
        }

        var feature = context.Proxy();
        var deidentified = feature.Decision.Obligations.View == RecordView.Deidentified;
        var ignored = q.Ignored.ToList();
        if (deidentified && q.HasStudyDate)
        {
            // The index holds true dates; the de-identified view shows shifted or no dates, so a
            // date range there would match something the caller cannot see.
            ignored.Add("StudyDate (not matched in the de-identified view)");
        }

        if (deidentified && !string.IsNullOrWhiteSpace(q.AccessionNumber))
        {
            // The de-identified view has no accession numbers to match (RecordQueries drops the key there).
            ignored.Add("AccessionNumber (not matched in the de-identified view)");
        }

        var query = RecordQueries.Create(feature, views, pseudonymizer, q.PatientId, study ?? q.StudyInstanceUid, series ?? q.SeriesInstanceUid, q.SopInstanceUid, q.AccessionNumber, q.IssuerOfPatientId) with
        {
            Modality = q.Modality,
            StudyDateFrom = deidentified ? null : q.StudyDateFrom,
            StudyDateTo = deidentified ? null : q.StudyDateTo,
            Limit = q.Limit,
            Offset = q.Offset,
        };

        var results = new List<DicomDataset>();
        var baseUrl = DicomWebEndpoints.BaseUrl(context);
        var maxExamined = policy.Value.MaxRecordsExamined;
        var truncated = false;
        switch (level)
        {
            case Level.Study:
            {
                // Studies and series are grouped from the instances the caller may see, so that no
                // count, modality or date reveals a withheld record.
                var all = await RecordAccess.SearchAsync(feature, query with { Offset = 0, Limit = maxExamined }, index.SearchInstancesAsync, maxExamined, context.RequestAborted);
                truncated = all.Truncated;
                var studies = all.Records.Where(r => r.Entry.StudyInstanceUid is not null).GroupBy(r => r.Entry.StudyInstanceUid!, StringComparer.Ordinal)
                    .OrderByDescending(g => g.Min(r => r.Entry.StudyDate).HasValue).ThenByDescending(g => g.Min(r => r.Entry.StudyDate)).ThenBy(g => g.Key, StringComparer.Ordinal)
                    .Skip(q.Offset).Take(q.Limit);
                foreach (var found in studies)
                {
                    // Counts and modalities describe the whole study as the caller may see it, not only the records that matched.
                    var whole = await RecordAccess.SearchAsync(feature, query with { StudyInstanceUid = found.Key, DeidentifiedUids = false, Modality = null, Offset = 0, Limit = maxExamined }, index.SearchInstancesAsync, maxExamined, context.RequestAborted);
                    var members = whole.Records.Count > 0 ? whole.Records : found.ToList();
                    var representative = found.MinBy(r => r.Entry.Handle, StringComparer.Ordinal)!;
                    var metadata = await views.MetadataAsync(representative.Entry, representative.Decision.Obligations, context.RequestAborted);
                    var result = Select(metadata, StudyAttributes, q);
                    result.Set(DicomElement.Text(ModalitiesInStudy, DicomVR.CS, string.Join('\\', members.Select(r => r.Entry.Modality).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))));
                    result.Set(Number(StudyRelatedSeries, members.Select(r => r.Entry.SeriesInstanceUid).OfType<string>().Distinct(StringComparer.Ordinal).Count()));
                    result.Set(Number(StudyRelatedInstances, members.Count));
                    result.Set(DicomElement.Text(InstanceAvailability, DicomVR.CS, "ONLINE"));
                    result.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, $"{baseUrl}/studies/{metadata.GetString(DicomTag.StudyInstanceUid)}"));
                    results.Add(result);
                }

                break;
            }

            case Level.Series:
            {
                var all = await RecordAccess.SearchAsync(feature, query with { Offset = 0, Limit = maxExamined }, index.SearchInstancesAsync, maxExamined, context.RequestAborted);
                truncated = all.Truncated;
                var seriesGroups = all.Records.Where(r => r.Entry.SeriesInstanceUid is not null).GroupBy(r => r.Entry.SeriesInstanceUid!, StringComparer.Ordinal)
                    .OrderBy(g => g.Min(r => r.Entry.SeriesNumber).HasValue).ThenBy(g => g.Min(r => r.Entry.SeriesNumber)).ThenBy(g => g.Key, StringComparer.Ordinal)
                    .Skip(q.Offset).Take(q.Limit);
                foreach (var found in seriesGroups)
                {
                    var representative = found.MinBy(r => r.Entry.Handle, StringComparer.Ordinal)!;
                    var metadata = await views.MetadataAsync(representative.Entry, representative.Decision.Obligations, context.RequestAborted);
                    var result = Select(metadata, SeriesAttributes, q);
                    result.Set(Number(SeriesRelatedInstances, found.Count()));
                    result.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, $"{baseUrl}/studies/{metadata.GetString(DicomTag.StudyInstanceUid)}/series/{metadata.GetString(DicomTag.SeriesInstanceUid)}"));
                    results.Add(result);
                }

                break;
            }

            default:
            {
                var page = await RecordAccess.SearchAsync(feature, query, index.SearchInstancesAsync, maxExamined, context.RequestAborted);
                truncated = page.Truncated;
                foreach (var found in page.Records)
                {
                    var metadata = await views.MetadataAsync(found.Entry, found.Decision.Obligations, context.RequestAborted);
                    var result = Select(metadata, InstanceAttributes, q);
                    result.Set(DicomElement.Text(InstanceAvailability, DicomVR.CS, "ONLINE"));
                    result.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR,
                        $"{baseUrl}/studies/{metadata.GetString(DicomTag.StudyInstanceUid)}/series/{metadata.GetString(DicomTag.SeriesInstanceUid)}/instances/{metadata.GetString(DicomTag.SopInstanceUid)}"));
                    results.Add(result);
                }

                break;
            }
        }

        if (ignored.Count > 0)
        {
            context.Response.Headers.Append("Warning", $"299 TrustedProxy \"ignored query parameters: {string.Join(", ", ignored)}\"");
        }

        if (truncated)
        {
            context.Response.Headers.Append("Warning", $"299 TrustedProxy \"the search stopped after examining {maxExamined} records (TrustedProxy:Policy:MaxRecordsExamined); narrow it\"");
        }

        return Results.Bytes(DicomJsonWriter.ToJsonArray(results), MediaTypes.DicomJson);
    }

    private static DicomDataset Select(DicomDataset metadata, IEnumerable<DicomTag> attributes, DicomWebQuery query)
    {
        var wanted = attributes.Concat(query.IncludeFields).ToHashSet();
        var result = new DicomDataset(metadata.Encoding);
        foreach (var element in metadata)
        {
            if (query.IncludeAll || wanted.Contains(element.Tag))
            {
                result.Set(element);
            }
        }

        return result;
    }

    private static DicomElement Number(DicomTag tag, long value) => DicomElement.Text(tag, DicomVR.IS, value.ToString(CultureInfo.InvariantCulture));
}
