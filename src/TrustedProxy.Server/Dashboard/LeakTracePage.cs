using System.Globalization;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http.Features;
using TrustedProxy.Client;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Watermarking;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// Leak tracing in the browser: the officer submits a copy found outside (DICOM or PNG) and sees
/// who received it, through the same <see cref="LeakTracer"/> as <c>POST /api/v1/trace</c>. The
/// form posts, so it carries an antiforgery token; the copy stays in memory.
/// </summary>
internal static class LeakTracePage
{
    public const string FileField = "copy";

    /// <summary>Room in the form's body besides the copy: multipart framing, the file name, the token.</summary>
    private const long FormAllowanceBytes = 64 * 1024;

    public static RouteGroupBuilder MapLeakTrace(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/trace", (HttpContext context, IAntiforgery antiforgery, LeakTracer tracer) => Render(context, antiforgery, tracer, report: null));
        dashboard.MapPost("/trace", TraceAsync);
        return dashboard;
    }

    private static async Task<IResult> TraceAsync(HttpContext context, IAntiforgery antiforgery, LeakTracer tracer, ILoggerFactory loggers)
    {
        if (!context.Request.HasFormContentType)
        {
            return Problem.Result(ProblemTypes.UnsupportedMediaType, "submit the tracing form (multipart/form-data)");
        }

        var limit = tracer.MaxCopyBytes + FormAllowanceBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limit;
        }

        // The whole form in memory: a leaked image is patient data and is not buffered to a temporary file.
        context.Features.Set<IFormFeature>(new FormFeature(context.Request, new FormOptions
        {
            MemoryBufferThreshold = (int)Math.Min(int.MaxValue, limit),
            MultipartBodyLengthLimit = limit,
            ValueCountLimit = 16,
        }));

        if (!await antiforgery.IsRequestValidAsync(context))
        {
            DashboardLog.AntiforgeryRefused(loggers.CreateLogger("TrustedProxy.Dashboard"), LogText.Route(context));
            return Problem.Result(ProblemTypes.AntiforgeryFailed, "the form's antiforgery token is missing, expired or not yours; open the tracing page again and submit from there");
        }

        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        if (form.Files.GetFile(FileField) is not { Length: > 0 } file)
        {
            return Problem.Result(ProblemTypes.BadRequest, "choose a file to trace: a DICOM file or a PNG of one frame");
        }

        if (file.Length > tracer.MaxCopyBytes)
        {
            return Problem.Result(ProblemTypes.PayloadTooLarge, $"the copy is larger than the {tracer.MaxCopyBytes} bytes a trace reads (TrustedProxy:Watermarking:MaxInMemoryBytes)");
        }

        var copy = new byte[file.Length];
        await using (var stream = file.OpenReadStream())
        {
            await stream.ReadExactlyAsync(copy, context.RequestAborted);
        }

        var report = await tracer.TraceAsync(copy, LeakTracer.Sniff(copy), context.RequestAborted);
        return Render(context, antiforgery, tracer, report);
    }

    private static IResult Render(HttpContext context, IAntiforgery antiforgery, LeakTracer tracer, TraceReport? report)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        return DashboardLayout.Page(context, DashboardLayout.Trace, "Leak tracing", html =>
        {
            if (report is not null)
            {
                Result(html, report);
            }

            html.Element("p", $"Submit a copy found outside: the DICOM file, or a PNG of one frame's stored values (up to {tracer.MaxCopyBytes.ToString(CultureInfo.InvariantCulture)} bytes). A copy handed out with a fingerprint names the consumer and the request it went out under.");
            using (html.Open("form", ("method", "post"), ("action", DashboardLayout.Trace.Path), ("enctype", "multipart/form-data"), ("class", "trace")))
            {
                html.Void("input", ("type", "hidden"), ("name", tokens.FormFieldName), ("value", tokens.RequestToken));
                using (html.Open("label"))
                {
                    html.Element("span", "Copy to trace");
                    html.Void("input", ("type", "file"), ("name", FileField), ("required", "required"), ("accept", ".dcm,.png,application/dicom,image/png"));
                }

                html.Element("button", "Trace", ("type", "submit"));
            }
        });
    }

    private static void Result(HtmlBuilder html, TraceReport report)
    {
        using (html.Open("section", ("class", "trace-result"), ("aria-label", "Trace result")))
        {
            html.Element("h2", report.Status switch
            {
                "fingerprinted" => report.ConsumerOrganisation is { } consumer ? $"Fingerprinted: handed out to {consumer}" : "Fingerprinted: the consumer is not known here",
                "sealed" => "Sealed: an original as stored, not handed out with a fingerprint",
                _ => "No valid mark",
            });
            using (html.Open("dl"))
            {
                Row(html, "Status", report.Status);
                Row(html, "Detail", report.Detail);
                Row(html, "Consumer organisation", report.ConsumerOrganisation);
                Row(html, "Certificate serial", report.CertificateSerial);
                Row(html, "Request id", report.RequestId);
                Row(html, "Request", report.RequestResource);
                Row(html, "Decided at (UTC)", report.DecidedAt is { } decided ? DashboardLayout.Time(decided) : null);
                Row(html, "Marked at (UTC)", report.MarkedAt is { } marked ? DashboardLayout.Time(marked) : null);
                Row(html, "Frame", report.Frame?.ToString(CultureInfo.InvariantCulture));
                Row(html, "Record handle", report.RecordHandle);
                Row(html, "Origin organisation", report.OriginOrganisation);
                Row(html, "Consumer tag", report.ConsumerTag);
                Row(html, "Request tag", report.RequestTag);
            }

            if (report.RequestId is { } requestId)
            {
                using (html.Open("p"))
                {
                    html.Element("a", "The decision in the log", ("href", DashboardLayout.Link(DashboardLayout.Decisions.Path, [new("request", requestId)])));
                }
            }
        }
    }

    private static void Row(HtmlBuilder html, string label, string? value)
    {
        if (value is not null)
        {
            html.Element("dt", label).Element("dd", value);
        }
    }
}
