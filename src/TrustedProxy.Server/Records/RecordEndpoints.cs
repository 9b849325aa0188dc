using System.Globalization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Records;

/// <summary>The records API, v1: upload, search, read, delete.</summary>
internal static class RecordEndpoints
{
    public const string DicomMediaType = "application/dicom";

    /// <summary>Says whether the copy sent carries a fingerprint: fingerprinted, unmarked, or "unmarked; reason=…".</summary>
    public const string WatermarkHeader = "Watermark";

    public static IEndpointRouteBuilder MapRecords(this IEndpointRouteBuilder app)
    {
        var records = app.MapGroup("/api/v1/records").WithTags("Records");
        records.MapPost("/", UploadAsync)
            .RequiresAction(ProxyAction.Upload)
            .Accepts<Stream>(DicomMediaType)
            .Produces<UploadResult>(StatusCodes.Status202Accepted)
            .Produces<UploadResult>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Upload one DICOM Part 10 file")
            .WithDescription("The body is the file. Answered 202 once the record is sealed, encrypted and stored; the handle names it from then on. The same file again from the same organisation (same SOP Instance UID, same bytes) is answered 200 with the existing record and alreadyStored: true; another file under the same SOP Instance UID is refused with 409 duplicate-instance, or replaces the old record where TrustedProxy:Records:DuplicateInstance is replace. 'seal' says how its integrity and origin are bound: pixels (a reversible watermark), detached (a stored signature: compressed or otherwise unmarkable images) or none (above the in-memory limit).");
        records.MapGet("/", SearchAsync)
            .RequiresAction(ProxyAction.Search)
            .Produces<RecordPage>()
            .WithSummary("List and search the records the caller may see")
            .WithDescription("Filters: patientId (matched through the proxy's pseudonym; with issuerOfPatientId, that issuer's patient only), studyInstanceUid, modality, from and to (study date, yyyy-MM-dd), limit, offset.");
        records.MapGet("/{handle}", GetAsync)
            .RequiresAction(ProxyAction.Retrieve)
            .Produces<RecordSummary>()
            .WithSummary("A record's index entry");
        records.MapGet("/{handle}/content", ContentAsync)
            .RequiresAction(ProxyAction.Retrieve)
            .Produces(StatusCodes.Status200OK, contentType: DicomMediaType)
            .WithSummary("A record's DICOM file: the original, or a fingerprinted copy of it")
            .WithDescription("The stored object is authenticated in full, and its seal verified and removed, before the first byte is sent. Where the policy says so the copy carries a fingerprint naming the caller and the request (header Watermark: fingerprinted); otherwise it is the upload bit-exact. Repr-Digest carries the SHA-256 of what is sent.");
        records.MapDelete("/{handle}", DeleteAsync)
            .RequiresAction(ProxyAction.Delete)
            .WithSummary("Delete a record from the index and the cloud");
        return app;
    }

    private static async Task<IResult> UploadAsync(HttpContext context, RecordUploader uploader, IOptions<RecordStoreOptions> options)
    {
        if (!IsDicomMediaType(context.Request.ContentType))
        {
            return Problem.Result(ProblemTypes.UnsupportedMediaType, $"upload the file as {DicomMediaType}");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxUploadBytes;
        }

        var feature = context.Proxy();
        var receipt = await uploader.UploadAsync(context.Request.Body, feature.Identity, feature.AuthorizeUploadAsync, context.RequestAborted);
        var location = $"/api/v1/records/{receipt.Handle}";
        var result = new UploadResult(receipt.Handle, receipt.SopInstanceUid, receipt.Length, location, receipt.Warnings, RecordViews.SealName(receipt.Seal), receipt.SealDetail, receipt.AlreadyStored, receipt.Replaced.Count > 0 ? receipt.Replaced : null);

        // Nothing new was accepted: the answer is the existing record, as a PACS re-sending a study expects.
        return receipt.AlreadyStored ? TypedResults.Ok(result) : TypedResults.Accepted(location, result);
    }

    private static async Task<IResult> SearchAsync(HttpContext context, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy)
    {
        var q = context.Request.Query;
        var errors = new List<string>();
        var from = ParseDate(q["from"], "from", errors);
        var to = ParseDate(q["to"], "to", errors);
        var limit = ParseInt(q["limit"], "limit", 100, 1, options.Value.MaxSearchResults, errors);
        var offset = ParseInt(q["offset"], "offset", 0, 0, int.MaxValue, errors);
        if (errors.Count > 0)
        {
            return Problem.Result(ProblemTypes.InvalidQuery, string.Join("; ", errors));
        }

        var feature = context.Proxy();
        var query = RecordQueries.Create(feature, views, pseudonymizer, q["patientId"], NullIfEmpty(q["studyInstanceUid"]), null, null, issuerOfPatientId: q["issuerOfPatientId"]) with
        {
            Modality = NullIfEmpty(q["modality"]),
            StudyDateFrom = from,
            StudyDateTo = to,
            Limit = limit,
            Offset = offset,
        };
        var visible = await RecordAccess.SearchAsync(feature, query, index.SearchAsync, policy.Value.MaxRecordsExamined, context.RequestAborted);
        var summaries = new List<RecordSummary>();
        foreach (var record in visible.Records)
        {
            summaries.Add(ToSummary(await views.DescribeAsync(record.Entry, record.Decision.Obligations, context.RequestAborted)));
        }

        if (visible.Truncated)
        {
            context.Response.Headers.Warning = visible.TruncationWarning;
        }

        return TypedResults.Ok(new RecordPage(summaries, limit, offset));
    }

    private static async Task<IResult> GetAsync(string handle, HttpContext context, RecordIndex index, RecordViews views)
    {
        var (record, refusal) = await RecordAccess.FindAsync(handle, context, index);
        return record is null ? refusal! : TypedResults.Ok(ToSummary(await views.DescribeAsync(record.Entry, record.Decision.Obligations, context.RequestAborted)));
    }

    private static async Task<IResult> ContentAsync(string handle, HttpContext context, RecordIndex index, RecordViews views)
    {
        var (found, refusal) = await RecordAccess.FindAsync(handle, context, index);
        if (found is null)
        {
            return refusal!;
        }

        var entry = found.Entry;
        using var record = await views.OpenAsync(entry, found.Decision.Obligations, context.Proxy().Egress, context.RequestAborted);
        var response = context.Response;
        response.Headers[WatermarkHeader] = record.Mark;
        response.ContentType = DicomMediaType;
        response.ContentLength = record.Length;
        if (record.Sha256 is { } digest)
        {
            response.Headers["Repr-Digest"] = $"sha-256=:{Convert.ToBase64String(digest)}:";
        }

        response.Headers.ContentDisposition = $"attachment; filename=\"{entry.Handle}.dcm\"";
        await record.CopyToAsync(response.Body, context.RequestAborted);
        return TypedResults.Empty;
    }

    private static async Task<IResult> DeleteAsync(string handle, HttpContext context, RecordIndex index, RecordDeleter deleter)
    {
        var (record, refusal) = await RecordAccess.FindAsync(handle, context, index);
        if (record is null)
        {
            return refusal!;
        }

        return await deleter.DeleteAsync(handle, context.RequestAborted) ? TypedResults.NoContent() : RecordAccess.NotFound(handle);
    }

    private static RecordSummary ToSummary(RecordDescription d) => new(
        d.Handle, d.PatientPseudonym, d.StudyInstanceUid, d.SeriesInstanceUid, d.SopInstanceUid, d.SopClassUid, d.Modality,
        d.StudyDate, d.TransferSyntaxUid, d.Length, d.OriginOrganisation, d.CreatedAt, d.View, d.Seal);

    private static bool IsDicomMediaType(string? contentType) =>
        contentType is not null && contentType.Split(';')[0].Trim().Equals(DicomMediaType, StringComparison.OrdinalIgnoreCase);

    internal static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static DateOnly? ParseDate(string? value, string name, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (DateOnly.TryParseExact(value, ["yyyy-MM-dd", "yyyyMMdd"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            return date;
        }

        errors.Add($"{name} must be a date as yyyy-MM-dd");
        return null;
    }

    private static int ParseInt(string? value, string name, int fallback, int min, int max, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
        {
            return number;
        }

        errors.Add($"{name} must be a whole number from {min} to {max}");
        return fallback;
    }
}
