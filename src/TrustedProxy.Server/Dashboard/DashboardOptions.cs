using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Server.Dashboard;

/// <summary>The compliance dashboard under /dashboard. Section TrustedProxy:Dashboard.</summary>
public sealed record DashboardOptions
{
    /// <summary>Serve the dashboard; off: its paths answer 404 like any unknown path.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Decisions per page of the decision log.</summary>
    [Range(1, 1000)]
    public int PageSize { get; init; } = 50;

    /// <summary>Most organisations and rules offered in the filters' pick lists (free text still finds the others).</summary>
    [Range(1, 10_000)]
    public int MaxPickListValues { get; init; } = 500;

    /// <summary>Latest denials the overview lists.</summary>
    [Range(0, 1000)]
    public int OverviewDenials { get; init; } = 10;

    /// <summary>Longest period a summary report covers, in days.</summary>
    [Range(1, 36_600)]
    public int MaxReportDays { get; init; } = 3_660;

    /// <summary>
    /// Largest line diff the policies page computes, in cells of its table: changed lines of the old
    /// file times changed lines of the new one (lines common to both ends are not counted). 4M cells
    /// take 16 MB and well under a second; a larger change is reported without a diff.
    /// </summary>
    [Range(1, 100_000_000)]
    public long MaxDiffCells { get; init; } = 4_000_000;

    /// <summary>Largest body the what-if form may post, in bytes (its fields are short texts).</summary>
    [Range(1024, 1024 * 1024)]
    public int MaxWhatIfFormBytes { get; init; } = 16 * 1024;

    /// <summary>
    /// A TrueType font for PDF reports, so that every character of an institution's name prints
    /// (e.g. Debian's <c>/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf</c>); relative to the content
    /// root. Unset: Helvetica, which prints '?' for a character outside its small set (å, ø, Cyrillic…).
    /// </summary>
    public string? PdfFontFile { get; init; }
}

/// <summary>The font PDF reports are written in: the configured TrueType font, or null for Helvetica.</summary>
internal sealed record ReportFont(byte[]? TrueType)
{
    /// <summary>Reads and checks the configured font; an unusable one is a configuration error, named.</summary>
    public static ReportFont Load(DashboardOptions options, string contentRoot, ICollection<string> errors)
    {
        if (string.IsNullOrWhiteSpace(options.PdfFontFile))
        {
            return new ReportFont((byte[]?)null);
        }

        var path = Path.GetFullPath(Path.Combine(contentRoot, options.PdfFontFile));
        if (!File.Exists(path))
        {
            errors.Add($"TrustedProxy:Dashboard:PdfFontFile: '{path}' does not exist");
            return new ReportFont((byte[]?)null);
        }

        var font = File.ReadAllBytes(path);
        using var probe = new UglyToad.PdfPig.Writer.PdfDocumentBuilder();
        if (!probe.CanUseTrueTypeFont(font, out var reasons))
        {
            errors.Add($"TrustedProxy:Dashboard:PdfFontFile: '{path}' is not a TrueType font PDF reports can embed: {string.Join("; ", reasons)}");
            return new ReportFont((byte[]?)null);
        }

        return new ReportFont(font);
    }
}
