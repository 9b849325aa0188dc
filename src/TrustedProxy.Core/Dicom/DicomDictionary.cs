using System.Collections.Frozen;
using System.Globalization;

namespace TrustedProxy.Dicom;

/// <summary>One entry of the PS3.6 data dictionary.</summary>
public sealed record DicomDictionaryEntry(string TagPattern, string ValueRepresentation, string Multiplicity, bool Retired, string Keyword, string Name)
{
    /// <summary>The tag, for entries that name one (not repeating groups).</summary>
    public DicomTag Tag => DicomTag.FromValue(uint.Parse(TagPattern, NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    /// <summary>The VR to assume when the encoding does not say (implicit VR); the first of 'US or SS' style alternatives.</summary>
    public DicomVR DefaultVR => DicomVR.From(ValueRepresentation[..2]);
}

/// <summary>
/// The PS3.6 data dictionary, generated from the standard's tables into an embedded resource
/// (tools/dicom-standard/generate.py). Loaded once, on first use.
/// </summary>
public static class DicomDictionary
{
    private static readonly Lazy<(FrozenDictionary<uint, DicomDictionaryEntry> Exact, (uint Mask, uint Value, DicomDictionaryEntry Entry)[] Repeating)> Table = new(Load);
    private static readonly Lazy<FrozenDictionary<string, DicomDictionaryEntry>> ByKeyword = new(() =>
        Table.Value.Exact.Values.Where(e => e.Keyword.Length > 0).GroupBy(e => e.Keyword).ToFrozenDictionary(g => g.Key, g => g.First()));

    /// <summary>Looks up a standard attribute by keyword (case-sensitive, as PS3.6 spells it).</summary>
    public static DicomDictionaryEntry? FindByKeyword(string keyword) => ByKeyword.Value.GetValueOrDefault(keyword);

    /// <summary>Looks up a tag, including repeating groups such as (60xx,3000). Private tags are not in the dictionary.</summary>
    public static DicomDictionaryEntry? Find(DicomTag tag)
    {
        var (exact, repeating) = Table.Value;
        if (exact.TryGetValue(tag.Value, out var entry))
        {
            return entry;
        }

        foreach (var (mask, value, candidate) in repeating)
        {
            if ((tag.Value & mask) == value)
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The VR an implicit-VR reader must assume for <paramref name="tag"/>.</summary>
    public static DicomVR ImplicitVR(DicomTag tag)
    {
        if (tag.Element == 0x0000)
        {
            return DicomVR.UL;
        }

        if (tag.IsPrivateCreator)
        {
            return DicomVR.LO;
        }

        if (tag.IsPrivate)
        {
            return DicomVR.UN;
        }

        return Find(tag)?.DefaultVR ?? DicomVR.UN;
    }

    public static int Count => Table.Value.Exact.Count + Table.Value.Repeating.Length;

    private static (FrozenDictionary<uint, DicomDictionaryEntry>, (uint, uint, DicomDictionaryEntry)[]) Load()
    {
        using var stream = typeof(DicomDictionary).Assembly.GetManifestResourceStream("TrustedProxy.Dicom.attributes.tsv")
            ?? throw new InvalidOperationException("the DICOM dictionary resource is missing from the assembly");
        using var reader = new StreamReader(stream);
        var exact = new Dictionary<uint, DicomDictionaryEntry>();
        var repeating = new List<(uint, uint, DicomDictionaryEntry)>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var f = line.Split('\t');
            var entry = new DicomDictionaryEntry(f[0], f[1], f[2], f[3] == "Y", f[4], f[5]);
            if (f[0].Contains('x'))
            {
                var (mask, value) = DicomTag.ParsePattern(f[0]);
                repeating.Add((mask, value, entry));
            }
            else
            {
                exact[uint.Parse(f[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture)] = entry;
            }
        }

        return (exact.ToFrozenDictionary(), repeating.ToArray());
    }
}
