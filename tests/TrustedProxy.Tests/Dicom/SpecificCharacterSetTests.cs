using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Dicom;

public sealed class SpecificCharacterSetTests
{
    public static TheoryData<string> FilesWithPersonNames => new(DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && f.PersonNames.Count > 0 && !DicomCorpus.KnownBroken.Contains(f.Name)).Select(f => f.ToString()));

    [Theory]
    [MemberData(nameof(FilesWithPersonNames))]
    public async Task PersonNames_DecodeAsPydicomDecodesThem(string name)
    {
        var expected = DicomCorpus.Files.Single(f => f.ToString() == name);
        var file = await DicomFile.ReadAsync(expected.Path);

        var names = PersonNames(file.Dataset).Select(WithoutTrailingEmptyComponents).ToList();

        Assert.Equal(expected.PersonNames.Select(WithoutTrailingEmptyComponents), names);
    }

    [Fact]
    public void TheCharsetFiles_CoverTheIso2022AndMultiByteSets()
    {
        var declared = DicomCorpus.Files.Where(f => f.Folder.StartsWith("charset_files", StringComparison.Ordinal)).Select(f => Declared(f.Path)).ToHashSet();

        Assert.Contains(declared, d => d.Contains("ISO 2022 IR 87"));
        Assert.Contains(declared, d => d.Contains("ISO 2022 IR 149"));
        Assert.Contains(declared, d => d.Contains("ISO_IR 192"));
        Assert.Contains(declared, d => d.Contains("ISO_IR 100"));
    }

    [Fact]
    public void EscapeSequences_SwitchSets_AndDelimitersSwitchBack()
    {
        var japanese = SpecificCharacterSet.Parse(@"\ISO 2022 IR 87");
        // "Yamada^Tarou=山田^太郎" as PS3.5 H.3.1 encodes it.
        byte[] value = [.. "Yamada^Tarou="u8, 0x1B, 0x24, 0x42, 0x3B, 0x33, 0x45, 0x44, 0x1B, 0x28, 0x42, (byte)'^', 0x1B, 0x24, 0x42, 0x42, 0x40, 0x4F, 0x3A, 0x1B, 0x28, 0x42];

        Assert.Equal("Yamada^Tarou=山田^太郎", japanese.Decode(value, isPersonName: true));
    }

    // PS3.5 6.2: trailing empty components and component groups of a person name carry no meaning
    // (pydicom drops them when it turns a name into text).
    private static string WithoutTrailingEmptyComponents(string name) =>
        string.Join('\\', name.Split('\\').Select(v => string.Join('=', v.Split('=').Select(g => g.TrimEnd('^'))).TrimEnd('=')));

    private static string Declared(string path) =>
        DicomFile.ReadAsync(path).GetAwaiter().GetResult().Dataset.CharacterSet.Declared;

    private static IEnumerable<string> PersonNames(DicomDataset dataset)
    {
        foreach (var element in dataset)
        {
            if (element.EffectiveVR == DicomVR.PN && element.Value.Length > 0)
            {
                var text = dataset.GetString(element.Tag);
                if (text is not null)
                {
                    yield return text;
                }
            }

            foreach (var item in element.Sequence?.Items ?? [])
            {
                foreach (var name in PersonNames(item.Dataset))
                {
                    yield return name;
                }
            }
        }
    }
}
