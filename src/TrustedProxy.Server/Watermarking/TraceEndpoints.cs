using Microsoft.AspNetCore.Http.Features;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Watermarking;

/// <summary>The API's door to <see cref="LeakTracer"/>: the copy is the request body.</summary>
internal static class TraceEndpoints
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

    private static async Task<IResult> TraceAsync(HttpContext context, LeakTracer tracer)
    {
        var mediaType = context.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
        if (mediaType is not (Records.RecordEndpoints.DicomMediaType or PngMediaType))
        {
            return Problem.Result(ProblemTypes.UnsupportedMediaType, $"submit the copy as {Records.RecordEndpoints.DicomMediaType} or {PngMediaType}");
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = tracer.MaxCopyBytes;
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        if (body.Length == 0)
        {
            return Problem.Result(ProblemTypes.BadRequest, "the request holds no copy to trace");
        }

        var format = mediaType == PngMediaType ? CopyFormat.Png : CopyFormat.Dicom;
        return TypedResults.Ok(await tracer.TraceAsync(body.GetBuffer().AsMemory(0, (int)body.Length), format, context.RequestAborted));
    }
}
