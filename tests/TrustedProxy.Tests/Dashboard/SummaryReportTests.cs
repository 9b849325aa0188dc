using System.Text;
using TrustedProxy.Policy;
using TrustedProxy.Server.Dashboard;

namespace TrustedProxy.Tests.Dashboard;

/// <summary>The summary report's CSV and PDF renderings, read back (the PDF with PdfPig).</summary>
public sealed class SummaryReportTests
{
    private const string DejaVuSans = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    private static readonly FederationIdentity Officer = new("Local Hospital", ProxyRole.Compliance, "0ABC");

    [Fact]
    public void Csv_HasOneLinePerRowWithThePeriod_EmptyCellsForWhatIsNotRecorded_QuotesWhereNeeded_AndDefusesFormulas()
    {
        var report = Report(
            new DecisionSummary("Haukeland", null, 2, 5, 1, null),
            new DecisionSummary("St Olav, Trondheim", "research", 0, 1, 0, 3),
            new DecisionSummary("-Minus (test)", null, 0, 0, 7, null));

        var lines = Encoding.UTF8.GetString(SummaryReportCsv.Write(report)).Split("\r\n");

        Assert.Equal(
            [
                "institution,purpose,uploads,retrievals,denials,break_glass_uses,from,to",
                "Haukeland,,2,5,1,,2025-03-01,2025-03-31",
                "\"St Olav, Trondheim\",research,0,1,0,3,2025-03-01,2025-03-31",
                "'-Minus (test),,0,0,7,,2025-03-01,2025-03-31",
                string.Empty,
            ],
            lines);
    }

    [Fact]
    public void Pdf_PrintsTheInstitutionPeriodEveryRowAndTheTotals_WithNotRecordedMarked()
    {
        var report = Report(new DecisionSummary("Haukeland", null, 2, 5, 1, null), new DecisionSummary("St Olav", null, 0, 1, 4, null));

        var lines = PdfText.AllLines(SummaryReportPdf.Write(report, trueTypeFont: null));

        Assert.Contains("TrustedProxy summary report", lines);
        Assert.Contains("Institution: All institutions", lines);
        Assert.Contains("Period: 2025-03-01 to 2025-03-31 (UTC, both days included)", lines);
        Assert.Contains("Institution Purpose Uploads Retrievals Denials Break-glass uses", lines);
        Assert.Contains("Haukeland n/r 2 5 1 n/r", lines);
        Assert.Contains("St Olav n/r 0 1 4 n/r", lines);
        Assert.Contains("Total n/r 2 6 5 n/r", lines);
    }

    [Fact]
    public void Pdf_InHelvetica_PrintsAQuestionMarkForACharacterItLacks_AndWithATrueTypeFont_PrintsIt()
    {
        Assert.True(File.Exists(DejaVuSans), $"{DejaVuSans} is missing: install Debian's fonts-dejavu-core (tools/test.sh does, as root)");
        var report = Report(new DecisionSummary("Ullevål", null, 1, 0, 0, null));

        Assert.Contains("Ullev?l n/r 1 0 0 n/r", PdfText.AllLines(SummaryReportPdf.Write(report, trueTypeFont: null)));
        Assert.Contains("Ullevål n/r 1 0 0 n/r", PdfText.AllLines(SummaryReportPdf.Write(report, File.ReadAllBytes(DejaVuSans))));
    }

    [Fact]
    public void Pdf_WithMoreRowsThanAPageHolds_ContinuesOnFurtherPages_EachWithTheTableHeader()
    {
        var rows = Enumerable.Range(1, 120).Select(i => new DecisionSummary($"Hospital {i:D3}", null, i, 0, 0, null)).ToArray();

        var pages = PdfText.Lines(SummaryReportPdf.Write(Report(rows), trueTypeFont: null));

        Assert.True(pages.Count >= 3, $"{pages.Count} pages");
        Assert.All(pages.Take(pages.Count - 1), page => Assert.Contains("Institution Purpose Uploads Retrievals Denials Break-glass uses", page));
        var printed = pages.SelectMany(p => p).Where(l => l.StartsWith("Hospital ", StringComparison.Ordinal)).ToList();
        Assert.Equal(rows.Select(r => $"{r.Organisation} n/r {r.Uploads} 0 0 n/r"), printed);
        Assert.Contains($"Total n/r {rows.Sum(r => r.Uploads)} 0 0 n/r", pages[^1]);
    }

    [Fact]
    public void Pdf_CutsAnInstitutionNameTooLongForItsColumn()
    {
        var name = new string('W', 64);

        var lines = PdfText.AllLines(SummaryReportPdf.Write(Report(new DecisionSummary(name, null, 3, 0, 0, null)), trueTypeFont: null));

        var row = Assert.Single(lines, l => l.StartsWith("WWW", StringComparison.Ordinal));
        Assert.Matches("^W+\\.\\.\\. n/r 3 0 0 n/r$", row);
        Assert.True(row.IndexOf('.', StringComparison.Ordinal) < name.Length);
    }

    private static SummaryReport Report(params DecisionSummary[] rows) =>
        new(null, new DayRange(new DateOnly(2025, 3, 1), new DateOnly(2025, 3, 31)), new DateTimeOffset(2025, 4, 1, 8, 0, 0, TimeSpan.Zero), Officer, rows);
}
