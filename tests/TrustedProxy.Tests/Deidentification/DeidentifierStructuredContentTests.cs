using System.Text;
using System.Text.Json;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Testing;
using TrustedProxy.Tests.Watermarking;

namespace TrustedProxy.Tests.Deidentification;

/// <summary>
/// Content Sequence (0040,A730) is D in the Basic Profile and C under Clean Structured Content: every
/// object of the corpus with a content tree is de-identified, and its output is scanned, as bytes and
/// as pydicom reads it, for the values pydicom finds in the source's tree.
/// </summary>
public sealed class DeidentifierStructuredContentTests : IDisposable
{
    private static readonly DicomTag ContentSequence = new(0x0040, 0xA730);
    private static readonly DicomTag ValueType = new(0x0040, 0xA040);
    private static readonly DicomTag TextValue = new(0x0040, 0xA160);
    private static readonly DicomTag Uid = new(0x0040, 0xA124);
    private static readonly DicomTag VerifyingObserverSequence = new(0x0040, 0xA073);
    private static readonly DicomTag VerifyingObserverName = new(0x0040, 0xA075);
    private static readonly DicomTag VerifyingOrganization = new(0x0040, 0xA027);
    private static readonly DeidentificationProfile Basic = new() { Name = "basic", AllowBurnedInAnnotation = true };
    private static readonly DeidentificationProfile CleanStructuredContent = new() { Name = "sr", AllowBurnedInAnnotation = true, Options = [DeidentificationOption.CleanStructuredContent] };

    private const string Oracle = """
        import json, os, sys, warnings
        warnings.simplefilter("ignore")
        import pydicom
        CONTENT = 0x0040A730
        SKIP = ("SQ", "CS", "IS", "DS", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV")
        def values(elem):
            vals = elem.value if isinstance(elem.value, (list, tuple, pydicom.multival.MultiValue)) else [elem.value]
            for v in vals:
                if v is None:
                    continue
                s = str(v).strip()
                if s:
                    yield s
                if elem.VR == "PN":
                    for part in s.replace("=", "^").split("^"):
                        if part.strip():
                            yield part.strip()
        def strings(ds, acc):
            for elem in ds.iterall():
                if elem.VR not in SKIP:
                    for s in values(elem):
                        acc.append({"tag": "%08x" % elem.tag, "vr": elem.VR, "value": s})
        def strip(ds):
            for elem in list(ds):
                if elem.tag == CONTENT:
                    del ds[elem.tag]
                elif elem.VR == "SQ":
                    for item in elem.value:
                        strip(item)
        mode = sys.argv[1]
        if mode == "list":
            root = sys.argv[2]
            found = []
            for folder in ("test_files", "charset_files"):
                for directory, _, names in os.walk(os.path.join(root, folder)):
                    for name in sorted(names):
                        path = os.path.join(directory, name)
                        try:
                            ds = pydicom.dcmread(path)
                            if any(e.tag == CONTENT for e in ds.iterall()):
                                found.append(path)
                        except Exception:
                            pass
            json.dump(sorted(found), sys.stdout)
        elif mode == "tree":
            ds = pydicom.dcmread(sys.argv[2])
            tree = []
            for elem in ds.iterall():
                if elem.tag == CONTENT:
                    for item in elem.value:
                        strings(item, tree)
            strip(ds)
            ds.save_as(sys.argv[3])
            json.dump(tree, sys.stdout)
        elif mode == "read":
            acc = []
            strings(pydicom.dcmread(sys.argv[2]), acc)
            json.dump(acc, sys.stdout)
        elif mode == "identify":
            ds = pydicom.dcmread(sys.argv[2])
            ds.PatientName = "Nordmann^Kari"
            ds.PatientID = "P-1234"
            texts = [e for e in ds.iterall() if e.tag == 0x0040A160]
            texts[0].value = "A mass of 3 cm, Kari Nordmann (P-1234),"
            ds.save_as(sys.argv[3])
        """;

    private readonly Deidentifier _deidentifier = new(new DeidentificationKeys(new byte[32], Enumerable.Repeat((byte)1, 32).ToArray(), Enumerable.Repeat((byte)2, 32).ToArray()));
    private readonly DirectoryInfo _scratch = Directory.CreateTempSubdirectory("tproxy-sr-");

    private static readonly Lazy<string[]> ContentTreeFiles = new(() => JsonSerializer.Deserialize<string[]>(PythonOracle.Run(Oracle, "list", DicomCorpus.DataDirectory))!);

    public static TheoryData<string> WithContentTree => new(ContentTreeFiles.Value);

    public void Dispose() => _scratch.Delete(recursive: true);

    [Fact]
    public void TheCorpus_HoldsTheStructuredReportsOfTheIssue()
    {
        var names = ContentTreeFiles.Value.Select(Path.GetFileName).ToList();

        Assert.Contains("reportsi.dcm", names);
        Assert.Contains("reportsi_with_empty_number_tags.dcm", names);
        Assert.Contains("test-SR.dcm", names);
    }

    [Theory]
    [MemberData(nameof(WithContentTree))]
    public async Task BasicProfile_LeavesNoTextNameDateOrUidOfTheContentTree(string path)
    {
        var (tree, explained) = await ContentTreeAsync(path, Basic);
        var output = await DeidentifyAsync(path, Basic);

        var needles = tree.Select(v => v.Value).Where(v => !explained.Contains(v)).Distinct().ToList();
        Assert.NotEmpty(needles);
        AssertNotInBytes(needles.Where(v => v.Length >= 4), output, path);
        var parsed = ReadWithPydicom(output).Select(v => v.Value).ToHashSet();
        Assert.All(needles, v => Assert.DoesNotContain(v, parsed));

        // The tree is one empty CONTAINER, so the document keeps a root with a child.
        var dataset = (await DicomFile.ReadAsync(new MemoryStream(output))).Dataset;
        var content = Assert.Single(dataset.Find(ContentSequence)!.Sequence!.Items).Dataset;
        Assert.Equal("CONTAINER", content.GetString(ValueType));
        Assert.Equal("CONTAINS", content.GetString(new DicomTag(0x0040, 0xA010)));
        Assert.Equal(3, content.Count);
    }

    [Theory]
    [MemberData(nameof(WithContentTree))]
    public async Task CleanStructuredContent_KeepsTheTree_WithoutItsNamesDatesOrUids(string path)
    {
        var (tree, explained) = await ContentTreeAsync(path, CleanStructuredContent);
        var output = await DeidentifyAsync(path, CleanStructuredContent);

        var needles = tree
            .Where(v => v.Vr is "PN" or "DA" or "DT" ||
                (v.Vr == "UI" && ConfidentialityProfile.Resolve(ConfidentialityProfile.Find(DicomTag.FromValue(Convert.ToUInt32(v.Tag, 16))), new HashSet<DeidentificationOption>()) == ProfileAction.ReplaceUid))
            .Select(v => v.Value).Where(v => !explained.Contains(v)).Distinct().ToList();
        AssertNotInBytes(needles.Where(v => v.Length >= 4), output, path);
        var parsed = ReadWithPydicom(output).Select(v => v.Value).ToHashSet();
        Assert.All(needles, v => Assert.DoesNotContain(v, parsed));

        var original = await DicomFile.ReadAsync(path);
        var result = await DicomFile.ReadAsync(new MemoryStream(output));
        Assert.Equal(ContentItems(original.Dataset).Select(i => i.GetString(ValueType)), ContentItems(result.Dataset).Select(i => i.GetString(ValueType)));
    }

    [Fact]
    public async Task CleanStructuredContent_CleansIdentifiersOutOfTextValues_AndReplacesUidRefs()
    {
        var source = Path.Combine(_scratch.FullName, "identified.dcm");
        PythonOracle.Run(Oracle, "identify", DicomCorpus.Get("test-SR.dcm").Path, source);

        var cleaned = (await DicomFile.ReadAsync(new MemoryStream(await DeidentifyAsync(source, CleanStructuredContent)))).Dataset;
        var basic = (await DicomFile.ReadAsync(new MemoryStream(await DeidentifyAsync(source, Basic)))).Dataset;

        var texts = ContentItems(cleaned).Select(i => i.GetString(TextValue)).OfType<string>().ToList();
        Assert.Contains("A mass of 3 cm, *** *** (***),", texts);
        Assert.Contains("was detected.", texts);
        var uid = ContentItems(cleaned).Select(i => i.GetString(Uid)).OfType<string>().Single();
        Assert.StartsWith("2.25.", uid);
        Assert.DoesNotContain(ContentItems(basic), i => i.Contains(TextValue));
        Assert.Contains(cleaned.Find(new DicomTag(0x0012, 0x0064))!.Sequence!.Items, i => i.Dataset.GetString(new DicomTag(0x0008, 0x0100)) == "113104");
    }

    [Fact]
    public async Task VerifyingObservers_AreDummied_AndNoOriginalTextInADummySequenceSurvives()
    {
        var path = DicomCorpus.Get("test-SR.dcm").Path;
        var original = await DicomFile.ReadAsync(path);

        var result = (await DicomFile.ReadAsync(new MemoryStream(await DeidentifyAsync(path, Basic)))).Dataset;

        var before = original.Dataset.Find(VerifyingObserverSequence)!.Sequence!.Items;
        var after = result.Find(VerifyingObserverSequence)!.Sequence!.Items;
        Assert.Equal(before.Count, after.Count);
        foreach (var (was, now) in before.Zip(after))
        {
            Assert.NotEqual(was.Dataset.GetString(VerifyingObserverName), now.Dataset.GetString(VerifyingObserverName));
            Assert.NotEqual(was.Dataset.GetString(VerifyingOrganization), now.Dataset.GetString(VerifyingOrganization));
        }
    }

    private async Task<(List<TreeValue> Tree, HashSet<string> Explained)> ContentTreeAsync(string path, DeidentificationProfile profile)
    {
        // What the rest of the file puts in the output (the same file, de-identified without its content
        // trees) is not evidence of a leak from the tree: a kept coding scheme UID, a dummy value.
        var stripped = Path.Combine(_scratch.FullName, Path.GetFileName(path) + ".stripped");
        var tree = JsonSerializer.Deserialize<List<TreeValue>>(PythonOracle.Run(Oracle, "tree", path, stripped), Json)!;
        var strippedOutput = await DeidentifyAsync(stripped, profile);
        var explained = ReadWithPydicom(strippedOutput).Select(v => v.Value).ToHashSet();
        explained.UnionWith(tree.Select(v => v.Value).Where(v => Contains(strippedOutput, v)));
        return (tree, explained);
    }

    private List<TreeValue> ReadWithPydicom(byte[] file)
    {
        var path = Path.Combine(_scratch.FullName, Guid.NewGuid().ToString("N") + ".dcm");
        File.WriteAllBytes(path, file);
        return JsonSerializer.Deserialize<List<TreeValue>>(PythonOracle.Run(Oracle, "read", path), Json)!;
    }

    private async Task<byte[]> DeidentifyAsync(string path, DeidentificationProfile profile)
    {
        await using var input = File.OpenRead(path);
        using var output = new MemoryStream();
        await _deidentifier.DeidentifyAsync(input, output, profile, "Haukeland", DicomReaderLimits.Default, CancellationToken.None);
        return output.ToArray();
    }

    private static IEnumerable<DicomDataset> ContentItems(DicomDataset dataset)
    {
        foreach (var item in dataset.Find(ContentSequence)?.Sequence?.Items ?? [])
        {
            yield return item.Dataset;
            foreach (var child in ContentItems(item.Dataset))
            {
                yield return child;
            }
        }
    }

    private static void AssertNotInBytes(IEnumerable<string> needles, byte[] output, string path)
    {
        foreach (var needle in needles)
        {
            Assert.False(Contains(output, needle), $"'{needle}' from the content tree of {Path.GetFileName(path)} is still in the de-identified file");
        }
    }

    private static bool Contains(byte[] haystack, string needle) =>
        haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0 || haystack.AsSpan().IndexOf(Encoding.Latin1.GetBytes(needle)) >= 0;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record TreeValue(string Tag, string Vr, string Value);
}
