using System.Text;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The summary report as CSV (RFC 4180, UTF-8, CRLF): one line per row with the period on each,
/// no totals line (a spreadsheet sums), an empty cell for what is not recorded.
/// </summary>
internal static class SummaryReportCsv
{
    public const string MediaType = "text/csv; charset=utf-8";

    public static byte[] Write(SummaryReport report)
    {
        var csv = new StringBuilder();
        Line(csv, [.. SummaryReport.Columns.Select(c => c.CsvName), "from", "to"]);
        foreach (var row in report.Rows)
        {
            Line(csv, [.. SummaryReport.Columns.Select(c => c.Value(row) ?? string.Empty), DayRange.Text(report.Period.From), DayRange.Text(report.Period.To)]);
        }

        return Encoding.UTF8.GetBytes(csv.ToString());
    }

    private static void Line(StringBuilder csv, IReadOnlyList<string> cells)
    {
        for (var i = 0; i < cells.Count; i++)
        {
            if (i > 0)
            {
                csv.Append(',');
            }

            csv.Append(Cell(cells[i]));
        }

        csv.Append("\r\n");
    }

    /// <summary>
    /// Quoted when it holds a separator, quote or line break; and a text that a spreadsheet would
    /// run as a formula (=, +, -, @, tab, CR first) is prefixed with an apostrophe (OWASP's advice
    /// against CSV injection): an organisation name may start with '-'.
    /// </summary>
    private static string Cell(string value)
    {
        if (value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r' && !long.TryParse(value, out _))
        {
            value = "'" + value;
        }

        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}
