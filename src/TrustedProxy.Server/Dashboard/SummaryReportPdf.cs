using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The summary report as a PDF (PdfPig's <see cref="PdfDocumentBuilder"/>): A4 landscape, the
/// institution, period and who generated it, the table of <see cref="SummaryReport.Columns"/> with
/// a totals row, then what each figure counts. Text is in the configured TrueType font, or in
/// Helvetica, whose character set is small: a character the font lacks prints as '?' (the CSV
/// carries every name exactly).
/// </summary>
internal sealed class SummaryReportPdf
{
    public const string MediaType = "application/pdf";

    private const double PageWidth = 842;
    private const double PageHeight = 595;
    private const double Margin = 40;
    private const double TextSize = 9;
    private const double LineHeight = 14;

    // Left edge of each column of SummaryReport.Columns; the last column ends at the right margin.
    private static readonly double[] ColumnStarts = [Margin, 340, 420, 500, 580, 660];

    private readonly PdfDocumentBuilder _builder;
    private readonly PdfDocumentBuilder.AddedFont _regular;
    private readonly PdfDocumentBuilder.AddedFont _bold;
    private readonly Dictionary<(PdfDocumentBuilder.AddedFont, char), bool> _printable = [];
    private PdfPageBuilder _page = null!;
    private double _y;

    private SummaryReportPdf(PdfDocumentBuilder builder, byte[]? trueTypeFont)
    {
        _builder = builder;
        if (trueTypeFont is null)
        {
            _regular = builder.AddStandard14Font(Standard14Font.Helvetica);
            _bold = builder.AddStandard14Font(Standard14Font.HelveticaBold);
        }
        else
        {
            _regular = _bold = builder.AddTrueTypeFont(trueTypeFont);
        }
    }

    /// <param name="report">The report.</param>
    /// <param name="trueTypeFont">A TrueType font for every character (<see cref="DashboardOptions.PdfFontFile"/>), or null for Helvetica.</param>
    public static byte[] Write(SummaryReport report, byte[]? trueTypeFont)
    {
        using var builder = new PdfDocumentBuilder();
        builder.DocumentInformation.Title = $"TrustedProxy summary report, {report.InstitutionLabel}, {DayRange.Text(report.Period.From)} to {DayRange.Text(report.Period.To)}";
        builder.DocumentInformation.Producer = "TrustedProxy";
        var pdf = new SummaryReportPdf(builder, trueTypeFont);
        pdf.Render(report);
        return builder.Build();
    }

    private void Render(SummaryReport report)
    {
        NewPage();
        Line("TrustedProxy summary report", 16, _bold, Margin);
        _y -= 6;
        Line($"Institution: {report.InstitutionLabel}", 10, _regular, Margin);
        Line($"Period: {report.PeriodLabel}", 10, _regular, Margin);
        Line($"Generated {DashboardLayout.Time(report.GeneratedAt)} UTC by {report.GeneratedBy.Organisation} ({TrustedProxy.Policy.ProxyRoles.ToName(report.GeneratedBy.Role)}), certificate {report.GeneratedBy.CertificateSerial}", 10, _regular, Margin);
        _y -= LineHeight;

        TableHeader();
        if (report.Rows.Count == 0)
        {
            Line("No decisions in this period.", TextSize, _regular, Margin);
        }

        foreach (var row in report.Rows)
        {
            if (_y < Margin + LineHeight)
            {
                NewPage();
                TableHeader();
            }

            TableRow(SummaryReport.Columns.Select(c => c.Value(row)).ToList(), _regular);
        }

        if (_y < Margin + LineHeight)
        {
            NewPage();
        }

        _page.DrawLine(new PdfPoint(Margin, _y + LineHeight - 3), new PdfPoint(PageWidth - Margin, _y + LineHeight - 3), 0.5);
        TableRow(SummaryReport.Columns.Select(c => c.Value(report.Totals)).ToList(), _bold);
        _y -= LineHeight;

        foreach (var definition in SummaryReport.Definitions)
        {
            foreach (var line in Wrap(definition, TextSize, _regular, PageWidth - (2 * Margin)))
            {
                if (_y < Margin)
                {
                    NewPage();
                }

                Line(line, TextSize, _regular, Margin);
            }
        }
    }

    private void NewPage()
    {
        _page = _builder.AddPage(PageSize.A4, isPortrait: false);
        _y = PageHeight - Margin;
    }

    private void TableHeader()
    {
        TableRow(SummaryReport.Columns.Select(c => (string?)c.Heading).ToList(), _bold);
        _page.DrawLine(new PdfPoint(Margin, _y + LineHeight - 3), new PdfPoint(PageWidth - Margin, _y + LineHeight - 3), 0.5);
    }

    /// <summary>One line of cells: text left-aligned and cut to its column, numbers right-aligned.</summary>
    private void TableRow(IReadOnlyList<string?> cells, PdfDocumentBuilder.AddedFont font)
    {
        for (var i = 0; i < cells.Count; i++)
        {
            var left = ColumnStarts[i];
            var right = (i + 1 < ColumnStarts.Length ? ColumnStarts[i + 1] : PageWidth - Margin) - 8;
            var text = Fit(Printable(cells[i] ?? SummaryReport.NotRecorded, font), TextSize, font, right - left);
            var x = SummaryReport.Columns[i].Numeric ? right - Width(text, TextSize, font) : left;
            _page.AddText(text, TextSize, new PdfPoint(x, _y), font);
        }

        _y -= LineHeight;
    }

    private void Line(string text, double size, PdfDocumentBuilder.AddedFont font, double x)
    {
        _page.AddText(Fit(Printable(text, font), size, font, PageWidth - Margin - x), size, new PdfPoint(x, _y), font);
        _y -= Math.Max(LineHeight, size * 1.4);
    }

    private IEnumerable<string> Wrap(string text, double size, PdfDocumentBuilder.AddedFont font, double width)
    {
        var line = string.Empty;
        foreach (var word in Printable(text, font).Split(' '))
        {
            var longer = line.Length == 0 ? word : line + " " + word;
            if (line.Length > 0 && Width(longer, size, font) > width)
            {
                yield return line;
                line = word;
            }
            else
            {
                line = longer;
            }
        }

        if (line.Length > 0)
        {
            yield return line;
        }
    }

    /// <summary>The text cut, with an ellipsis, to fit <paramref name="width"/>.</summary>
    private string Fit(string text, double size, PdfDocumentBuilder.AddedFont font, double width)
    {
        if (Width(text, size, font) <= width)
        {
            return text;
        }

        for (var length = text.Length - 1; length > 0; length--)
        {
            var cut = text[..length].TrimEnd() + "...";
            if (Width(cut, size, font) <= width)
            {
                return cut;
            }
        }

        return "...";
    }

    private double Width(string text, double size, PdfDocumentBuilder.AddedFont font)
    {
        if (text.Length == 0)
        {
            return 0;
        }

        var letters = _page.MeasureText(text, size, new PdfPoint(0, 0), font);
        return letters[^1].EndBaseLine.X;
    }

    /// <summary>The text with every character the font cannot draw replaced by '?'.</summary>
    private string Printable(string text, PdfDocumentBuilder.AddedFont font)
    {
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!_printable.TryGetValue((font, chars[i]), out var printable))
            {
                try
                {
                    _page.MeasureText(chars[i].ToString(), TextSize, new PdfPoint(0, 0), font);
                    printable = true;
                }
                catch (InvalidOperationException)
                {
                    // PdfPig's only way to say a font lacks a character.
                    printable = false;
                }

                _printable[(font, chars[i])] = printable;
            }

            if (!printable)
            {
                chars[i] = '?';
            }
        }

        return new string(chars);
    }
}
