using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Watermarking;

/// <summary>
/// Leak tracing for compliance officers: a copy found outside (the DICOM file, or a PNG of its stored
/// values) is submitted, its fingerprint read and authenticated under the proxy's key, and its request
/// tag looked up in the decision log: who received it, when, under which request.
/// </summary>
internal static partial class TraceEndpoints
{
    public const string PngMediaType = "image/png";

    public static IEndpointRouteBuilder MapTrace(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/trace", TraceAsync)
            .RequiresAction(ProxyAction.Audit)
            .Accepts<Stream>(Records.RecordEndpoints.DicomMediaType, PngMediaType)
            .Produces<TraceReport>()
            .WithTags("Audit")
            .WithSummary("Trace a leaked copy to the consumer and request it was handed out under")
            .WithDescription("The body is a DICOM Part 10 file (application/dicom) or a PNG of one frame's stored values (image/png). The answer says fingerprinted (with the consumer organisation, certificate, request and time from the decision log), sealed (an original as stored) or no-valid-mark.");
        return app;
    }

    private static async Task<IResult> TraceAsync(
        HttpContext context, RecordWatermarks watermarks, DecisionLog decisions, RecordIndex index, IOptions<DicomReaderLimits> limits, ILoggerFactory loggers)
    {
        var mediaType = context.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (mediaType is not (Records.RecordEndpoints.DicomMediaType or PngMediaType))
        {
            return Problem.Result(ProblemTypes.UnsupportedMediaType, $"submit the copy as {Records.RecordEndpoints.DicomMediaType} or {PngMediaType}");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = watermarks.Options.MaxInMemoryBytes;
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        if (body.Length == 0)
        {
            return Problem.Result(ProblemTypes.BadRequest, "the request holds no copy to trace");
        }

        TraceResult result;
        if (mediaType == PngMediaType)
        {
            try
            {
                PngDecoder.Decode(body.GetBuffer().AsSpan(0, (int)body.Length));
            }
            catch (FormatException e)
            {
                return Problem.Result(ProblemTypes.InvalidImage, $"not a PNG this proxy reads: {e.Message}");
            }

            result = watermarks.Watermarker.TracePng(body.GetBuffer().AsSpan(0, (int)body.Length));
        }
        else
        {
            body.Position = 0;
            result = watermarks.Watermarker.Trace(await DicomFile.ReadAsync(body, limits.Value, context.RequestAborted));
        }

        var report = await ReportAsync(result, watermarks, decisions, index);
        LogTrace(loggers.CreateLogger("TrustedProxy.Watermarking"), report.Status, report.RequestId ?? "-", report.ConsumerOrganisation ?? "-");
        return TypedResults.Ok(report);
    }

    private static async Task<TraceReport> ReportAsync(TraceResult result, RecordWatermarks watermarks, DecisionLog decisions, RecordIndex index)
    {
        switch (result.Status)
        {
            case TraceStatus.Fingerprinted:
            {
                var fingerprint = result.Fingerprint!;
                var consumerTag = RecordWatermarks.TagText(fingerprint.ConsumerTag);
                var requestTag = RecordWatermarks.TagText(fingerprint.RequestTag);
                var decision = (await decisions.FindByRequestTagAsync(requestTag)).FirstOrDefault();
                if (decision is not null && watermarks.ConsumerTag(decision.Organisation) == consumerTag)
                {
                    return new TraceReport("fingerprinted", $"{result.Detail}; handed out to {decision.Organisation} under request {decision.RequestId}", result.Frame, fingerprint.Time,
                        decision.Organisation, decision.CertificateSerial, decision.RequestId, decision.Resource, decision.Id, decision.At, consumerTag, requestTag);
                }

                // The request is not (or no longer) in the log: name the consumer from its tag if it is a known organisation.
                var organisation = (await decisions.OrganisationsAsync()).FirstOrDefault(o => watermarks.ConsumerTag(o) == consumerTag);
                var detail = decision is null
                    ? $"{result.Detail}; the request is not in the decision log"
                    : $"{result.Detail}; the request in the decision log belongs to another consumer than the fingerprint names";
                return new TraceReport("fingerprinted", detail, result.Frame, fingerprint.Time, organisation, ConsumerTag: consumerTag, RequestTag: requestTag);
            }

            case TraceStatus.Sealed:
            {
                var seal = result.Seal!;
                var entry = await index.FindAsync(seal.RecordHandle);
                var origin = entry is not null && watermarks.Watermarker.OriginTag(entry.OriginOrganisation) == seal.OriginTag ? entry.OriginOrganisation : null;
                return new TraceReport("sealed", $"{result.Detail}; no fingerprint: it was not handed out with one", result.Frame, seal.Time, RecordHandle: seal.RecordHandle, OriginOrganisation: origin);
            }

            default:
                return new TraceReport("no-valid-mark", result.Detail);
        }
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Trace: {Status}, request {RequestId}, consumer {Organisation}")]
    private static partial void LogTrace(ILogger logger, string status, string requestId, string organisation);
}
