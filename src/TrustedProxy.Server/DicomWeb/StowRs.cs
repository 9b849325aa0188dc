using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Dicom;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Storage;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>
/// STOW-RS (PS3.18 10.5): a multipart/related body of application/dicom parts, each stored through
/// the same upload path as the records API. The answer is a Store Instances Response in the DICOM
/// JSON model naming every part's outcome: 200 when every instance is stored, 202 when some failed
/// or were changed (a zeroed executable preamble), 409 when none could be stored. Parts stored before
/// a later part fails stay in the answer whatever the failure, so a client never has to guess what
/// was kept; only a body that cannot be read as multipart at all (and so stored nothing) is a 400
/// problem. An instance the organisation had already stored, byte for byte, is answered with the
/// existing record (see <see cref="RecordUploader"/>).
/// </summary>
internal static partial class StowRs
{
    // PS3.4 Annex B and PS3.7 Annex C status codes used as Failure Reason / Warning Reason.
    private const ushort OutOfResources = 0xA700;
    private const ushort DataSetDoesNotMatch = 0xA900;
    private const ushort CannotUnderstand = 0xC000;
    private const ushort CoercionOfDataElements = 0xB000;
    private const ushort NotAuthorized = 0x0124;
    private const ushort ProcessingFailure = 0x0110;
    private const ushort DuplicateSopInstance = 0x0111;

    private static readonly DicomTag RetrieveUrl = new(0x0008, 0x1190);
    private static readonly DicomTag FailedSopSequence = new(0x0008, 0x1198);
    private static readonly DicomTag ReferencedSopSequence = new(0x0008, 0x1199);
    private static readonly DicomTag ReferencedSopClassUid = new(0x0008, 0x1150);
    private static readonly DicomTag ReferencedSopInstanceUid = new(0x0008, 0x1155);
    private static readonly DicomTag FailureReason = new(0x0008, 0x1197);
    private static readonly DicomTag WarningReason = new(0x0008, 0x1196);

    // How each stored instance was sealed, in a private block (PS3.5 §7.8): the standard response
    // has no attribute for it, and a DICOMweb client must be able to tell without a second request.
    private static readonly DicomTag SealPrivateCreator = new(0x0009, 0x0010);
    private static readonly DicomTag SealKind = new(0x0009, 0x1001);
    private static readonly DicomTag SealDetail = new(0x0009, 0x1002);

    // What became of each part, in words, and the record that holds it: the standard has no code
    // for "already stored" (it is a success, not a coercion), and the handle is how the records API
    // names the record.
    private static readonly DicomTag OutcomePrivateCreator = new(0x0009, 0x0011);
    private static readonly DicomTag Outcome = new(0x0009, 0x1101);
    private static readonly DicomTag RecordHandle = new(0x0009, 0x1102);

    /// <summary>The private creator of the seal attributes (0009,1001) seal kind and (0009,1002) its detail.</summary>
    public const string SealCreator = "TrustedProxy seal";

    /// <summary>The private creator of (0009,1101) the part's outcome and (0009,1102) the record's handle.</summary>
    public const string OutcomeCreator = "TrustedProxy outcome";

    /// <summary>Outcome words of stored parts; failed parts carry the refusal's word (<see cref="UploadRefusals"/>).</summary>
    public const string Stored = "stored";
    public const string AlreadyStored = "already-stored";
    public const string Replaced = "replaced";
    public const string MultipartFraming = "multipart-framing";
    public const string InsufficientStorage = "insufficient-storage";

    /// <summary>
    /// The reader of a STOW-RS body under the limits every upload is read with; one place, so that
    /// the fuzz harness (tests/TrustedProxy.Fuzz) reads bodies exactly as the endpoint does.
    /// </summary>
    internal static MultipartReader CreateReader(string boundary, Stream body, long maxUploadBytes) =>
        new(boundary, body)
        {
            BodyLengthLimit = maxUploadBytes,
            HeadersCountLimit = 16,
            HeadersLengthLimit = 16 * 1024,
        };

    public static async Task<IResult> StoreAsync(HttpContext context, string? study, RecordUploader uploader, AuditLog audit, IOptions<RecordStoreOptions> options, ILogger logger)
    {
        if (!MediaTypes.TryGetDicomBoundary(context.Request.ContentType, out var boundary, out var error))
        {
            LogRefusedContentType(logger, LogText.Escape(error));
            return Problem.Result(Problems.ProblemTypes.UnsupportedMediaType, error!);
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxStowBytes;
        }

        var reader = CreateReader(boundary, context.Request.Body, options.Value.MaxUploadBytes);
        var feature = context.Proxy();
        var stored = new List<DicomItem>();
        var failed = new List<DicomItem>();
        var warnings = 0;
        string? studyOfAll = study;
        var parts = 0;
        string? broken = null;
        var tooLarge = false;
        var diskFull = false;

        async Task RefuseAsync(string? sopClass, string? sopInstance, ushort reason, string word, bool audited)
        {
            failed.Add(Item(sopClass, sopInstance, FailureReason, reason, word));
            LogPartRefused(logger, parts, reason, word);
            if (!audited)
            {
                try
                {
                    await audit.AppendAsync(AuditEvents.UploadRefused(feature.Identity.Organisation, word, null));
                }
                catch (AuditUnavailableException)
                {
                    // Nothing was done for this part, and the parts stored before it must stay in the
                    // answer: the log line above is the record; the next upload fails closed anyway.
                }
            }
        }

        while (true)
        {
            MultipartSection? section;
            try
            {
                section = await reader.ReadNextSectionAsync(context.RequestAborted);
            }
            catch (Exception ex) when (IsBodyFailure(ex, context))
            {
                // Between parts: a missing, wrong or truncated boundary, or headers over the limits.
                (broken, tooLarge) = (Describe(ex), IsTooLarge(ex));
                if (parts > 0 || stored.Count > 0)
                {
                    parts++;
                    await RefuseAsync(null, null, tooLarge ? OutOfResources : CannotUnderstand, tooLarge ? UploadRefusals.TooLarge : MultipartFraming, audited: false);
                }

                break;
            }

            if (section is null)
            {
                break;
            }

            parts++;
            var partType = section.ContentType?.Split(';')[0].Trim();
            var body = new ObservedReadStream(section.Body);
            try
            {
                if (partType is not null && !partType.Equals(MediaTypes.Dicom, StringComparison.OrdinalIgnoreCase))
                {
                    await body.CopyToAsync(Stream.Null, context.RequestAborted);
                    await RefuseAsync(null, null, CannotUnderstand, UploadRefusals.NotDicomPart, audited: false);
                    continue;
                }

                var receipt = await uploader.UploadAsync(body, feature.Identity, feature.AuthorizeUploadAsync, context.RequestAborted, study);
                stored.Add(StoredItem(context, receipt));
                warnings += receipt.Warnings.Count > 0 ? 1 : 0;
                studyOfAll = studyOfAll is null && stored.Count == 1 ? receipt.StudyInstanceUid : studyOfAll == receipt.StudyInstanceUid ? studyOfAll : null;
            }
            catch (Exception ex) when (body.Failure is not null && IsBodyFailure(ex, context))
            {
                // The part's own bytes could not be read: over the per-instance limit, or the body
                // ended inside it. What follows cannot be trusted, so reading stops here.
                (broken, tooLarge) = (Describe(ex), IsTooLarge(ex));
                await RefuseAsync(null, null, tooLarge ? OutOfResources : CannotUnderstand, tooLarge ? UploadRefusals.TooLarge : MultipartFraming, audited: false);
                break;
            }
            catch (DicomFormatException format)
            {
                await RefuseAsync(null, null, CannotUnderstand, UploadRefusals.Of(format), audited: true);
            }
            catch (TrustedProxy.Policy.RecordWithheldException)
            {
                // Denied by a record-level rule once its header was read (in the decision log and the audit log as a decision).
                await RefuseAsync(null, null, NotAuthorized, "denied-by-policy", audited: true);
            }
            catch (UploadRejectedException rejected)
            {
                await RefuseAsync(rejected.SopClassUid, rejected.SopInstanceUid, DataSetDoesNotMatch, UploadRefusals.OtherStudy, audited: true);
            }
            catch (DuplicateInstanceException duplicate)
            {
                await RefuseAsync(duplicate.SopClassUid, duplicate.SopInstanceUid, DuplicateSopInstance, UploadRefusals.DuplicateInstance, audited: true);
            }
            catch (BackendUnavailableException)
            {
                await RefuseAsync(null, null, OutOfResources, "backend-unavailable", audited: false);
            }
            catch (AuditUnavailableException)
            {
                // Nothing was kept for this part; the refusal itself cannot be audited either.
                failed.Add(Item(null, null, FailureReason, ProcessingFailure, "audit-unavailable"));
                LogPartRefused(logger, parts, ProcessingFailure, "audit-unavailable");
            }
            catch (InsufficientStorageException)
            {
                // The local disk is full: out of resources, as PS3.4 names it; the client may send the part again later.
                diskFull = true;
                await RefuseAsync(null, null, OutOfResources, InsufficientStorage, audited: false);
            }
            catch (IOException)
            {
                // Local storage (the staging area, the index) failed, a full disk for one.
                await RefuseAsync(null, null, OutOfResources, "local-storage", audited: false);
            }
            catch (Exception ex) when (!context.RequestAborted.IsCancellationRequested)
            {
                LogPartFailed(logger, parts, ex);
                await RefuseAsync(null, null, ProcessingFailure, UploadRefusals.Failed, audited: false);
            }
        }

        if (stored.Count == 0 && broken is not null)
        {
            return tooLarge
                ? Problem.Result(Problems.ProblemTypes.PayloadTooLarge, "the request body is larger than the configured limit; nothing was stored")
                : Problem.Result(Problems.ProblemTypes.BadRequest, $"the multipart/related body could not be read ({broken}); nothing was stored");
        }

        if (parts == 0)
        {
            return Problem.Result(Problems.ProblemTypes.BadRequest, "the request holds no parts");
        }

        var response = new DicomDataset(DicomEncoding.ExplicitLittle);
        if (studyOfAll is not null && stored.Count > 0)
        {
            response.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, $"{DicomWebEndpoints.BaseUrl(context)}/studies/{studyOfAll}"));
        }

        if (failed.Count > 0)
        {
            response.Set(DicomElement.Create(FailedSopSequence, new DicomSequence(failed, UndefinedLength: false)));
        }

        if (stored.Count > 0)
        {
            response.Set(DicomElement.Create(ReferencedSopSequence, new DicomSequence(stored, UndefinedLength: false)));
        }

        if (diskFull)
        {
            // As a 507 says it for the REST upload: when to send the failed parts again.
            context.Response.Headers.RetryAfter = ProblemExceptionHandler.InsufficientStorageRetryAfterSeconds;
        }

        var status = stored.Count == 0 ? StatusCodes.Status409Conflict : failed.Count > 0 || warnings > 0 ? StatusCodes.Status202Accepted : StatusCodes.Status200OK;
        return Results.Text(System.Text.Encoding.UTF8.GetString(Json(response)), MediaTypes.DicomJson, System.Text.Encoding.UTF8, status);
    }

    private static DicomItem StoredItem(HttpContext context, UploadReceipt receipt)
    {
        var outcome = receipt.AlreadyStored ? AlreadyStored : receipt.Replaced.Count > 0 ? Replaced : Stored;
        var item = Item(receipt.SopClassUid, receipt.SopInstanceUid, receipt.Warnings.Count > 0 ? WarningReason : null, CoercionOfDataElements, outcome);
        if (receipt.StudyInstanceUid is not null && receipt.SeriesInstanceUid is not null && receipt.SopInstanceUid is not null)
        {
            item.Dataset.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, InstanceUrl(context, receipt)));
        }

        item.Dataset.Set(DicomElement.Text(SealPrivateCreator, DicomVR.LO, SealCreator));
        item.Dataset.Set(DicomElement.Text(SealKind, DicomVR.LO, RecordViews.SealName(receipt.Seal)));
        if (receipt.SealDetail is { } detail)
        {
            item.Dataset.Set(DicomElement.Text(SealDetail, DicomVR.LT, detail));
        }

        item.Dataset.Set(DicomElement.Text(RecordHandle, DicomVR.LO, receipt.Handle));
        return item;
    }

    // The request body failed under a part (not the storage behind it): Kestrel's own limits and
    // framing (BadHttpRequestException is an IOException), the multipart reader's (IOException for an
    // unexpected end, InvalidDataException for its limits). A client that went away is not one.
    private static bool IsBodyFailure(Exception ex, HttpContext context) =>
        !context.RequestAborted.IsCancellationRequested && ex is IOException or InvalidDataException;

    private static bool IsTooLarge(Exception ex) =>
        ex is Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } ||
        (ex is InvalidDataException && ex.Message.Contains("body length limit", StringComparison.OrdinalIgnoreCase));

    // Our own words: the exception's text may quote the body.
    private static string Describe(Exception ex) => ex switch
    {
        _ when IsTooLarge(ex) => "a part or the whole request is larger than the configured limit",
        InvalidDataException => "a part's headers exceed the limits",
        _ => "the body ended before the closing boundary, or its boundary is not the one the Content-Type names",
    };

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "STOW-RS request refused: {Reason}")]
    private static partial void LogRefusedContentType(ILogger logger, string reason);

    // Never a UID or any other value of the part: the part's position, the status code and a fixed word.
    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "STOW-RS part {Part} not stored: failure reason {FailureReason:X4} ({Refusal})")]
    private static partial void LogPartRefused(ILogger logger, int part, ushort failureReason, string refusal);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "STOW-RS part {Part} failed unexpectedly")]
    private static partial void LogPartFailed(ILogger logger, int part, Exception exception);

    private static string InstanceUrl(HttpContext context, UploadReceipt receipt) =>
        $"{DicomWebEndpoints.BaseUrl(context)}/studies/{receipt.StudyInstanceUid}/series/{receipt.SeriesInstanceUid}/instances/{receipt.SopInstanceUid}";

    private static DicomItem Item(string? sopClass, string? sopInstance, DicomTag? reasonTag, ushort reason, string outcome)
    {
        var item = new DicomDataset(DicomEncoding.ExplicitLittle);
        item.Set(DicomElement.Text(OutcomePrivateCreator, DicomVR.LO, OutcomeCreator));
        item.Set(DicomElement.Text(Outcome, DicomVR.LO, outcome));
        if (sopClass is not null)
        {
            item.Set(DicomElement.Text(ReferencedSopClassUid, DicomVR.UI, sopClass));
        }

        if (sopInstance is not null)
        {
            item.Set(DicomElement.Text(ReferencedSopInstanceUid, DicomVR.UI, sopInstance));
        }

        if (reasonTag is { } tag)
        {
            item.Set(DicomElement.UInt16(tag, reason, DicomEncoding.ExplicitLittle));
        }

        return new DicomItem(item, UndefinedLength: false);
    }

    private static byte[] Json(DicomDataset dataset)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            DicomJsonWriter.WriteDataset(writer, dataset);
        }

        return buffer.ToArray();
    }
}
