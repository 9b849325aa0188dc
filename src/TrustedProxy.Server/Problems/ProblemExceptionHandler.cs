using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Diagnostics;
using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Records;
using TrustedProxy.Dicom;
using TrustedProxy.Server.Hosting;
using TrustedProxy.Server.Watermarking;
using TrustedProxy.Storage;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Problems;

/// <summary>Maps the exceptions the proxy's capabilities throw to problem responses, in one place.</summary>
internal sealed partial class ProblemExceptionHandler(ILogger<ProblemExceptionHandler> logger) : IExceptionHandler
{
    /// <summary>
    /// Retry-After of a 507: long enough for an operator's alert to be seen and space freed, short
    /// enough that a PACS's queue does not stall for long once it is.
    /// </summary>
    public const string InsufficientStorageRetryAfterSeconds = "60";

    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            return true;
        }

        var (type, detail, extensions) = Classify(exception);
        if (type == ProblemTypes.Internal)
        {
            LogUnexpected(logger, exception);
        }
        else
        {
            LogProblem(logger, type.Slug, LogText.Route(context), LogText.Escape(detail));
        }

        if (exception is AuditUnavailableException audit)
        {
            // The caller learns only that the log is unavailable; the operator needs the cause (a path, an OS error).
            LogAuditUnavailable(logger, LogText.Escape(audit.Message));
        }

        if (context.Response.HasStarted)
        {
            // Headers are gone; the only honest signal left is to break the connection.
            context.Abort();
            return true;
        }

        // Headers an endpoint set before failing (content type, disposition) do not belong to the problem.
        context.Response.Clear();
        if (context.Features.Get<Policy.ProxyRequestFeature>() is { } request)
        {
            // The request id is how a compliance officer finds this failure in the decision log.
            context.Response.Headers[Policy.ProxyRequestFeature.RequestIdHeader] = request.RequestId;
        }

        if (type == ProblemTypes.BackendUnavailable)
        {
            context.Response.Headers.RetryAfter = "30";
        }
        else if (type == ProblemTypes.InsufficientStorage)
        {
            context.Response.Headers.RetryAfter = InsufficientStorageRetryAfterSeconds;
        }

        await Problem.Write(context, type, detail, extensions);
        return true;
    }

    private static (ProblemType Type, string Detail, Dictionary<string, object?>? Extensions) Classify(Exception exception) => exception switch
    {
        DicomFormatException { Problem: DicomFormatProblem.NotPart10 } dicom =>
            (ProblemTypes.NotDicom, dicom.Detail, null),
        DicomFormatException { Problem: DicomFormatProblem.ExecutablePreamble } dicom =>
            (ProblemTypes.ExecutablePreamble, dicom.Detail, null),
        DicomFormatException { Problem: DicomFormatProblem.LimitExceeded } dicom =>
            (ProblemTypes.DicomLimitExceeded, dicom.Detail, new() { ["offset"] = dicom.Offset }),
        DicomFormatException dicom =>
            (ProblemTypes.InvalidDicom, dicom.Detail, new() { ["offset"] = dicom.Offset, ["problem"] = dicom.Problem.ToString() }),
        // Checking a form's antiforgery token reads the form: a body over the limit surfaces wrapped.
        AntiforgeryValidationException { InnerException: BadHttpRequestException bad } =>
            Classify(bad),
        AntiforgeryValidationException =>
            (ProblemTypes.AntiforgeryFailed, "the form's antiforgery token could not be read; open the page again and submit from there", null),
        // The binder's exception text names the parameter and the JSON path: ours says what to fix.
        BadHttpRequestException { InnerException: System.Text.Json.JsonException } =>
            (ProblemTypes.BadRequest, "the request body is not JSON of the shape this endpoint takes (see /openapi/v1.json)", null),
        BadHttpRequestException { InnerException: BadHttpRequestException inner } =>
            Classify(inner),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
            (ProblemTypes.PayloadTooLarge, "the request body is larger than the configured limit", null),
        BadHttpRequestException bad =>
            (ProblemTypes.BadRequest, bad.StatusCode == 400 ? "the request could not be read" : $"the request was refused ({bad.StatusCode})", null),
        EnvelopeIntegrityException integrity =>
            (ProblemTypes.IntegrityFailure, integrity.Message, null),
        SealIntegrityException seal =>
            (ProblemTypes.IntegrityFailure, seal.Message, new() { ["check"] = "watermark-seal" }),
        StoredObjectNotFoundException =>
            (ProblemTypes.ObjectMissing, "the record's object is missing from the cloud backend", null),
        BackendUnavailableException backend =>
            (ProblemTypes.BackendUnavailable, $"the {backend.Backend} backend is unavailable; retry later", null),
        CertificateAuthorityException ca =>
            (ProblemTypes.CaRequestRefused, ca.Message, null),
        InvalidImageException image =>
            (ProblemTypes.InvalidImage, image.Message, null),
        DeidentificationRefusedException refused =>
            (ProblemTypes.DeidentificationRefused, refused.Message, null),
        TrustedProxy.Policy.RecordWithheldException withheld =>
            (ProblemTypes.Forbidden, withheld.Decision.Reason, new() { ["rule"] = withheld.Decision.Rule }),
        UnknownDeidentificationProfileException unknown =>
            (ProblemTypes.UnknownProfile, unknown.Message, null),
        DuplicateInstanceException duplicate =>
            (ProblemTypes.DuplicateInstance, duplicate.Message, new() { ["record"] = duplicate.ExistingHandle }),
        InsufficientStorageException =>
            (ProblemTypes.InsufficientStorage, "the proxy's local disk is full, so the upload was not kept (nothing of it remains); send it again later", null),
        AuditUnavailableException =>
            (ProblemTypes.AuditUnavailable, "the audit log cannot be written, so nothing is done; the server's log says why", null),
        _ => (ProblemTypes.Internal, "an unexpected error occurred; it has been logged", null),
    };

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Request failed with {Problem}: {Route}: {Detail}")]
    private static partial void LogProblem(ILogger logger, string problem, string route, string detail);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Error, Message = "Request refused because the audit log cannot be written: {Reason}")]
    private static partial void LogAuditUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Error, Message = "Unexpected error")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);
}
