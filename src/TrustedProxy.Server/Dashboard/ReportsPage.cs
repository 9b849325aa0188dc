using Microsoft.Extensions.Options;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// Summary reports per institution and period: a table on the page, the same as PDF and CSV
/// downloads (the links carry the page's query, so the file is the table one sees).
/// </summary>
internal static partial class ReportsPage
{
    public const string PdfPath = "/reports/summary.pdf";
    public const string CsvPath = "/reports/summary.csv";

    public static RouteGroupBuilder MapReports(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/reports", RenderAsync);
        dashboard.MapGet(PdfPath, async (HttpContext context, DecisionLog log, IOptions<DashboardOptions> options, TimeProvider time, ReportFont font, ILoggerFactory loggers) =>
            await DownloadAsync(context, log, options.Value, time, loggers, "pdf", SummaryReportPdf.MediaType, report => SummaryReportPdf.Write(report, font.TrueType)));
        dashboard.MapGet(CsvPath, async (HttpContext context, DecisionLog log, IOptions<DashboardOptions> options, TimeProvider time, ILoggerFactory loggers) =>
            await DownloadAsync(context, log, options.Value, time, loggers, "csv", SummaryReportCsv.MediaType, SummaryReportCsv.Write));
        return dashboard;
    }

    private static async Task<IResult> RenderAsync(HttpContext context, DecisionLog log, IOptions<DashboardOptions> options, TimeProvider time)
    {
        var (report, problem) = await BuildAsync(context, log, options.Value, time);
        if (problem is not null)
        {
            return problem;
        }

        var organisations = (await log.FilterValuesAsync(options.Value.MaxPickListValues)).Organisations;
        if (report?.Organisation is { } chosen && !organisations.Contains(chosen, StringComparer.Ordinal))
        {
            organisations = [.. organisations, chosen];
        }

        KeyValuePair<string, string?>[] query =
        [
            new("organisation", report!.Organisation), new("from", DayRange.Text(report.Period.From)), new("to", DayRange.Text(report.Period.To)),
        ];

        return DashboardLayout.Page(context, DashboardLayout.Reports, "Summary reports", html =>
        {
            using (html.Open("form", ("method", "get"), ("action", DashboardLayout.Reports.Path), ("class", "filters")))
            {
                FormFields.Select(html, "Institution", "organisation", organisations, report.Organisation, anyLabel: "All institutions");
                FormFields.Input(html, "From (day)", "from", DayRange.Text(report.Period.From), type: "date");
                FormFields.Input(html, "To (day)", "to", DayRange.Text(report.Period.To), type: "date");
                html.Element("button", "Show", ("type", "submit"));
            }

            html.Element("h2", $"{report.InstitutionLabel}, {report.PeriodLabel}");
            using (html.Open("table", ("class", "report")))
            {
                using (html.Open("thead"))
                using (html.Open("tr"))
                {
                    foreach (var column in SummaryReport.Columns)
                    {
                        html.Element("th", column.Heading, ("scope", "col"), ("class", column.Numeric ? "number" : null));
                    }
                }

                using (html.Open("tbody"))
                {
                    foreach (var row in report.Rows)
                    {
                        Row(html, row, "td");
                    }
                }

                using (html.Open("tfoot"))
                {
                    Row(html, report.Totals, "th");
                }
            }

            using (html.Open("p", ("class", "downloads")))
            {
                html.Element("a", "Download PDF", ("href", DashboardLayout.Link(DashboardLayout.Root + PdfPath, query)), ("download", report.FileName("pdf")));
                html.Element("a", "Download CSV", ("href", DashboardLayout.Link(DashboardLayout.Root + CsvPath, query)), ("download", report.FileName("csv")));
            }

            html.Element("h2", "What the figures count");
            using (html.Open("ul", ("class", "definitions")))
            {
                foreach (var definition in SummaryReport.Definitions)
                {
                    html.Element("li", definition);
                }
            }
        });
    }

    private static void Row(HtmlBuilder html, DecisionSummary row, string cell)
    {
        using (html.Open("tr"))
        {
            foreach (var column in SummaryReport.Columns)
            {
                var value = column.Value(row);
                var kind = (column.Numeric, value is null) switch
                {
                    (true, true) => "number not-recorded",
                    (true, false) => "number",
                    (false, true) => "not-recorded",
                    _ => null,
                };
                html.Element(cell, value ?? SummaryReport.NotRecorded, ("class", kind));
            }
        }
    }

    private static async Task<IResult> DownloadAsync(
        HttpContext context, DecisionLog log, DashboardOptions options, TimeProvider time, ILoggerFactory loggers, string extension, string mediaType, Func<SummaryReport, byte[]> write)
    {
        var (report, problem) = await BuildAsync(context, log, options, time);
        if (problem is not null)
        {
            return problem;
        }

        LogReport(loggers.CreateLogger("TrustedProxy.Dashboard"), extension, LogText.Escape(report!.InstitutionLabel), DayRange.Text(report.Period.From), DayRange.Text(report.Period.To), context.Proxy().Identity.CertificateSerial);
        return TypedResults.File(write(report), mediaType, report.FileName(extension));
    }

    /// <summary>The report the query asks for: institution (empty: all), from and to (days; default this month so far).</summary>
    private static async Task<(SummaryReport? Report, IResult? Problem)> BuildAsync(HttpContext context, DecisionLog log, DashboardOptions options, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var query = new DashboardQuery(context.Request.Query);
        var organisation = query.Text("organisation", OrganisationName.MaxLength);
        var from = query.Date("from") ?? new DateOnly(today.Year, today.Month, 1);
        var to = query.Date("to") ?? today;
        var period = new DayRange(from, to);
        if (from > to)
        {
            query.Error("from must not be after to");
        }
        else if (period.Days > options.MaxReportDays)
        {
            query.Error($"a report covers at most {options.MaxReportDays} days (TrustedProxy:Dashboard:MaxReportDays)");
        }

        if (query.Problem() is { } problem)
        {
            return (null, problem);
        }

        var rows = await log.SummarizeAsync(period.Start, period.End, organisation);
        return (new SummaryReport(organisation, period, now, context.Proxy().Identity, rows), null);
    }

    [LoggerMessage(EventId = 7501, Level = LogLevel.Information, Message = "Summary report as {Format} for {Institution}, {From} to {To}, by certificate {Serial}")]
    private static partial void LogReport(ILogger logger, string format, string institution, string from, string to, string serial);
}
