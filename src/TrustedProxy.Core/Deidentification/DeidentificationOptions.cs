using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Deidentification;

/// <summary>
/// A named option set for the de-identified view, chosen by configuration or, per request, by
/// policy. Section TrustedProxy:Deidentification:Profiles:{name}.
/// </summary>
public sealed record DeidentificationProfile
{
    /// <summary>The name policies and requests refer to.</summary>
    [Required]
    public string Name { get; init; } = "basic";

    /// <summary>PS3.15 options applied on top of the Basic Application Level Confidentiality Profile.</summary>
    public DeidentificationOption[] Options { get; init; } = [];

    /// <summary>
    /// Private attributes kept under Retain Safe Private, as "<c>creator|gggg,xxee</c>": the private
    /// creator string, the odd group, and the element within the creator's block.
    /// </summary>
    public string[] SafePrivateAttributes { get; init; } = [];

    /// <summary>Serve images marked or suspected to carry burned-in text anyway (the pixels are not cleaned).</summary>
    public bool AllowBurnedInAnnotation { get; init; }

    /// <summary>
    /// Modalities whose images are suspected to carry burned-in text when Burned In Annotation
    /// (0028,0301) is absent; when not configured: US, ES, XC, SC, OT, DOC, SM, GM.
    /// </summary>
    public string[] SuspectedBurnedInModalities { get; init; } = [];

    internal static readonly string[] DefaultSuspectedBurnedInModalities = ["US", "ES", "XC", "SC", "OT", "DOC", "SM", "GM"];

    public IReadOnlyList<string> EffectiveSuspectedBurnedInModalities => SuspectedBurnedInModalities.Length > 0 ? SuspectedBurnedInModalities : DefaultSuspectedBurnedInModalities;

    /// <summary>Under Retain Longitudinal Temporal Information with Modified Dates, dates move back by 1 to this many days, per patient.</summary>
    [Range(1, 36500)]
    public int MaxDateShiftDays { get; init; } = 3650;

    internal IEnumerable<string> Validate()
    {
        if (Options.Contains(DeidentificationOption.RetainLongitudinalFullDates) && Options.Contains(DeidentificationOption.RetainLongitudinalModifiedDates))
        {
            yield return $"profile '{Name}': RetainLongitudinalFullDates and RetainLongitudinalModifiedDates exclude each other";
        }

        foreach (var entry in SafePrivateAttributes)
        {
            if (!SafePrivateAttribute.TryParse(entry, out _))
            {
                yield return $"profile '{Name}': safe private attribute '{entry}' is not 'creator|gggg,xxee' with an odd group";
            }
        }
    }
}

/// <summary>A private attribute declared safe to keep: its creator, group and element within the block.</summary>
public sealed record SafePrivateAttribute(string Creator, ushort Group, byte Element)
{
    public static bool TryParse(string text, out SafePrivateAttribute? attribute)
    {
        attribute = null;
        var parts = text.Split('|');
        if (parts.Length != 2 || parts[1].Length != 9 || parts[1][4] != ',' || !parts[1][5..7].Equals("xx", StringComparison.OrdinalIgnoreCase) ||
            !ushort.TryParse(parts[1][..4], System.Globalization.NumberStyles.HexNumber, null, out var group) || (group & 1) == 0 ||
            !byte.TryParse(parts[1][7..], System.Globalization.NumberStyles.HexNumber, null, out var element))
        {
            return false;
        }

        attribute = new SafePrivateAttribute(parts[0].Trim(), group, element);
        return true;
    }
}

/// <summary>All named profiles. Section TrustedProxy:Deidentification.</summary>
public sealed record DeidentificationSettings
{
    /// <summary>The profile used when a request asks for the de-identified view without naming one.</summary>
    [Required]
    public string DefaultProfile { get; init; } = "basic";

    public DeidentificationProfile[] Profiles { get; init; } = [];

    /// <summary>The configured profiles, with the always-present "basic" (no options) when not configured.</summary>
    public IReadOnlyDictionary<string, DeidentificationProfile> ByName =>
        Profiles.Concat(Profiles.Any(p => p.Name == "basic") ? [] : [new DeidentificationProfile()])
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    internal IEnumerable<string> Validate()
    {
        foreach (var duplicate in Profiles.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            yield return $"TrustedProxy:Deidentification: two profiles are named '{duplicate.Key}'";
        }

        if (!ByName.ContainsKey(DefaultProfile))
        {
            yield return $"TrustedProxy:Deidentification:DefaultProfile: no profile is named '{DefaultProfile}'";
        }

        foreach (var error in Profiles.SelectMany(p => p.Validate()))
        {
            yield return error;
        }
    }
}
