using System.Globalization;
using TrustedProxy.Policy;

namespace TrustedProxy.Server.Dashboard;

/// <summary>A column of the summary report: its heading, its CSV name, and how a row shows it (null: not recorded).</summary>
internal sealed record ReportColumn(string Heading, string CsvName, bool Numeric, Func<DecisionSummary, string?> Value);

/// <summary>
/// What institutions did in a period, from the decision log: one row per institution and purpose
/// of use. The table, the PDF and the CSV all render
/// <see cref="Columns"/>, so a new figure or dimension is added here once.
/// </summary>
internal sealed record SummaryReport(string? Organisation, DayRange Period, DateTimeOffset GeneratedAt, FederationIdentity GeneratedBy, IReadOnlyList<DecisionSummary> Rows)
{
    /// <summary>How the table and the PDF show a dimension the decision log does not record yet (the CSV leaves the cell empty).</summary>
    public const string NotRecorded = "n/r";

    public static IReadOnlyList<ReportColumn> Columns { get; } =
    [
        new("Institution", "institution", false, r => r.Organisation),
        new("Purpose", "purpose", false, r => r.Purpose),
        new("Uploads", "uploads", true, r => Number(r.Uploads)),
        new("Retrievals", "retrievals", true, r => Number(r.Retrievals)),
        new("Denials", "denials", true, r => Number(r.Denials)),
        new("Break-glass uses", "break_glass_uses", true, r => r.BreakGlassUses is { } uses ? Number(uses) : null),
    ];

    /// <summary>What each figure counts, as printed under the table.</summary>
    public static IReadOnlyList<string> Definitions { get; } =
    [
        "Institution: the organisation in the caller's certificate.",
        "Uploads: permitted upload requests (REST uploads and STOW-RS requests; one STOW-RS request may carry several instances).",
        "Retrievals: permitted record reads (content, index entry, WADO-RS, rendered frames) and oblivious-transfer offers, one per transfer.",
        "Purpose: the purpose of use the request declared (treatment when it declared none).",
        "Denials: decisions of any action that the policy denied: whole requests, and records withheld from a permitted request (a search that withheld three records counts three).",
        "Break-glass uses: requests permitted by a break-glass rule, with the justification the caller gave (in the decision log).",
        $"{NotRecorded}: not recorded (decisions taken before this version of the log recorded the purpose).",
    ];

    public string InstitutionLabel => Organisation ?? "All institutions";

    public string PeriodLabel => $"{DayRange.Text(Period.From)} to {DayRange.Text(Period.To)} (UTC, both days included)";

    /// <summary>The sum over every row; its purpose is "all", or not recorded when no row records one.</summary>
    public DecisionSummary Totals => new(
        "Total",
        Rows.Count > 0 && Rows.All(r => r.Purpose is not null) ? "all" : null,
        Rows.Sum(r => r.Uploads),
        Rows.Sum(r => r.Retrievals),
        Rows.Sum(r => r.Denials),
        Rows.Count > 0 && Rows.All(r => r.BreakGlassUses is not null) ? Rows.Sum(r => r.BreakGlassUses!.Value) : null);

    /// <summary>A file name for a download: the institution and the period.</summary>
    public string FileName(string extension)
    {
        var who = Organisation is null ? "all" : TrustedProxy.CertificateAuthority.OrganisationName.ToFileStem(Organisation);
        return $"trustedproxy-summary-{(who.Length > 0 ? who : "institution")}-{DayRange.Text(Period.From)}-{DayRange.Text(Period.To)}.{extension}";
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
