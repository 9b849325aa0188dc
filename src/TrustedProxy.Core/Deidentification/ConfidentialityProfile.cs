using System.Collections.Frozen;
using System.Globalization;
using TrustedProxy.Dicom;

namespace TrustedProxy.Deidentification;

/// <summary>The options of PS3.15 Annex E that change what the Basic Profile does.</summary>
public enum DeidentificationOption
{
    RetainSafePrivate,
    RetainUids,
    RetainDeviceIdentity,
    RetainInstitutionIdentity,
    RetainPatientCharacteristics,
    RetainLongitudinalFullDates,
    RetainLongitudinalModifiedDates,
    CleanDescriptors,
    CleanStructuredContent,
    CleanGraphics,
}

/// <summary>What to do with an attribute (PS3.15 E.1.1): keep, remove, empty, dummy, new UID, clean.</summary>
public enum ProfileAction
{
    Keep,
    Remove,
    Zero,
    Dummy,
    ReplaceUid,
    Clean,
}

/// <summary>One row of table E.1-1: the Basic Profile action and the action under each option that changes it.</summary>
public sealed record ProfileRule(string TagPattern, string Name, string Basic, IReadOnlyDictionary<DeidentificationOption, string> Options);

/// <summary>
/// PS3.15 table E.1-1, generated from the standard into an embedded resource
/// (tools/dicom-standard/generate.py), and the rule for turning its entries into one action.
/// </summary>
public static class ConfidentialityProfile
{
    // Column order of the generated file after "tag" and "basic".
    private static readonly DeidentificationOption[] Columns =
    [
        DeidentificationOption.RetainSafePrivate, DeidentificationOption.RetainUids, DeidentificationOption.RetainDeviceIdentity,
        DeidentificationOption.RetainInstitutionIdentity, DeidentificationOption.RetainPatientCharacteristics,
        DeidentificationOption.RetainLongitudinalFullDates, DeidentificationOption.RetainLongitudinalModifiedDates,
        DeidentificationOption.CleanDescriptors, DeidentificationOption.CleanStructuredContent, DeidentificationOption.CleanGraphics,
    ];

    private static readonly Lazy<Table> Rules = new(Load);

    public static IReadOnlyCollection<ProfileRule> All => Rules.Value.All;

    /// <summary>The row for a standard attribute, including repeating groups; null if the table does not list it.</summary>
    public static ProfileRule? Find(DicomTag tag)
    {
        var table = Rules.Value;
        if (tag.IsPrivate)
        {
            return table.Private;
        }

        if (table.Exact.TryGetValue(tag.Value, out var rule))
        {
            return rule;
        }

        foreach (var (mask, value, candidate) in table.Repeating)
        {
            if ((tag.Value & mask) == value)
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// The one action for an attribute under a set of options. An option that lists the attribute
    /// replaces the Basic Profile's action; if several do, keeping wins over cleaning. A combined
    /// entry (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) names what to do depending on the attribute's type in
    /// the IOD, which the proxy does not track per IOD: it takes the choice that keeps the object
    /// conformant for any type (D, else Z, else U), none of which carries identifying content.
    /// </summary>
    public static ProfileAction Resolve(ProfileRule? rule, IReadOnlySet<DeidentificationOption> options)
    {
        if (rule is null)
        {
            return ProfileAction.Keep;
        }

        var chosen = rule.Basic;
        var optionActions = rule.Options.Where(o => options.Contains(o.Key)).Select(o => o.Value).ToList();
        if (optionActions.Contains("K"))
        {
            chosen = "K";
        }
        else if (optionActions.Contains("C"))
        {
            chosen = "C";
        }

        var parts = chosen.Split('/');
        return parts switch
        {
            ["K"] => ProfileAction.Keep,
            ["X"] => ProfileAction.Remove,
            ["Z"] => ProfileAction.Zero,
            ["D"] => ProfileAction.Dummy,
            ["U"] => ProfileAction.ReplaceUid,
            ["C"] => ProfileAction.Clean,
            _ when parts.Contains("D") => ProfileAction.Dummy,
            _ when parts.Contains("Z") => ProfileAction.Zero,
            _ when parts.Any(p => p.StartsWith('U')) => ProfileAction.ReplaceUid,
            _ => throw new InvalidOperationException($"unknown profile action '{chosen}' for {rule.TagPattern}"),
        };
    }

    private static Table Load()
    {
        using var stream = typeof(ConfidentialityProfile).Assembly.GetManifestResourceStream("TrustedProxy.Deidentification.confidentiality_profile.tsv")
            ?? throw new InvalidOperationException("the confidentiality profile resource is missing from the assembly");
        using var reader = new StreamReader(stream);
        var exact = new Dictionary<uint, ProfileRule>();
        var repeating = new List<(uint, uint, ProfileRule)>();
        var all = new List<ProfileRule>();
        ProfileRule? privateRule = null;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#' || line.StartsWith("tag\t", StringComparison.Ordinal))
            {
                continue;
            }

            var f = line.Split('\t');
            var options = new Dictionary<DeidentificationOption, string>();
            for (var i = 0; i < Columns.Length; i++)
            {
                if (f[2 + i].Length > 0)
                {
                    options[Columns[i]] = f[2 + i];
                }
            }

            var rule = new ProfileRule(f[0], f[^1], f[1], options);
            all.Add(rule);
            if (f[0] == "private")
            {
                privateRule = rule;
            }
            else if (f[0].Contains('x'))
            {
                var (mask, value) = DicomTag.ParsePattern(f[0]);
                repeating.Add((mask, value, rule));
            }
            else
            {
                exact[uint.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)] = rule;
            }
        }

        return new Table(exact.ToFrozenDictionary(), [.. repeating], privateRule ?? throw new InvalidOperationException("no private attribute row"), all);
    }

    private sealed record Table(FrozenDictionary<uint, ProfileRule> Exact, (uint Mask, uint Value, ProfileRule Rule)[] Repeating, ProfileRule Private, IReadOnlyCollection<ProfileRule> All);
}
