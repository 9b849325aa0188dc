using System.Text;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Deidentification;

/// <summary>The Basic Profile over the whole corpus, checked element by element against table E.1-1 and byte by byte for leaks.</summary>
public sealed class DeidentifierCorpusTests
{
    private static readonly DeidentificationProfile Basic = new() { Name = "basic", AllowBurnedInAnnotation = true };
    private readonly Deidentifier _deidentifier = new(new DeidentificationKeys(new byte[32], Enumerable.Repeat((byte)1, 32).ToArray(), Enumerable.Repeat((byte)2, 32).ToArray()));

    public static TheoryData<string> Corpus => new(DicomCorpus.WellFormedPart10.Select(f => f.ToString()));

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task EveryAttribute_IsTreatedAsTheProfileSays(string name)
    {
        var source = DicomCorpus.Files.Single(f => f.ToString() == name);
        var original = await DicomFile.ReadAsync(source.Path);
        var output = await DeidentifyAsync(source.Path, Basic);
        var result = await DicomFile.ReadAsync(new MemoryStream(output));

        var uidMap = new Dictionary<string, string>();
        Compare(original.Dataset, result.Dataset, uidMap, path: "", insideDummy: false);

        Assert.Equal("YES", result.Dataset.GetString(new DicomTag(0x0012, 0x0062)));
        Assert.Equal("113100", result.Dataset.Find(new DicomTag(0x0012, 0x0064))!.Sequence!.Items[0].Dataset.GetString(new DicomTag(0x0008, 0x0100)));
        Assert.Equal(result.Dataset.GetString(DicomTag.SopInstanceUid), result.Meta.GetString(DicomTag.MediaStorageSopInstanceUid));
        Assert.Equal(original.TransferSyntax.Uid, result.TransferSyntax.Uid);
        Assert.All(result.Preamble, b => Assert.Equal(0, b));
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task NoIdentifyingValue_AppearsAnywhereInTheOutputBytes(string name)
    {
        var source = DicomCorpus.Files.Single(f => f.ToString() == name);
        var original = await DicomFile.ReadAsync(source.Path);
        var output = await DeidentifyAsync(source.Path, Basic);

        // The SOP Class UID of the file meta is kept, and may be all that names the class (UN_sequence.dcm).
        var kept = KeptValues(original.Dataset).Append(original.Meta.GetString(DicomTag.MediaStorageSopClassUid) ?? "").ToHashSet(StringComparer.OrdinalIgnoreCase);
        // The dummy values the profile writes prove nothing when an original happened to hold them too.
        string[] dummies = ["000000", "19000101", "19000101000000", "ANONYMIZED", "CONTAINS", "CONTAINER", "SEPARATE"];
        var needles = source.TextValues.Where(v => v.Length >= 6 && !dummies.Contains(v) && !kept.Any(k => k.Contains(v, StringComparison.OrdinalIgnoreCase))).ToList();
        foreach (var needle in needles)
        {
            foreach (var bytes in new[] { Encoding.UTF8.GetBytes(needle), Encoding.Latin1.GetBytes(needle) })
            {
                Assert.True(output.AsSpan().IndexOf(bytes) < 0, $"'{needle}' from {name} is still in the de-identified file");
            }
        }
    }

    private async Task<byte[]> DeidentifyAsync(string path, DeidentificationProfile profile)
    {
        await using var input = File.OpenRead(path);
        using var output = new MemoryStream();
        await _deidentifier.DeidentifyAsync(input, output, profile, "Haukeland", DicomReaderLimits.Default, CancellationToken.None);
        return output.ToArray();
    }

    private static readonly HashSet<DicomTag> SetByTheDeidentifier =
    [
        DicomTag.PatientId, new(0x0010, 0x0010), DicomTag.SpecificCharacterSet, new(0x0012, 0x0062), new(0x0012, 0x0063), new(0x0012, 0x0064), new(0x0028, 0x0303),
    ];

    private static void Compare(DicomDataset original, DicomDataset result, Dictionary<string, string> uidMap, string path, bool insideDummy)
    {
        foreach (var element in original)
        {
            var where = $"{path}{element.Tag}";
            var after = result.Find(element.Tag);
            if (element.Tag.IsPrivate)
            {
                Assert.True(after is null, $"private {where} survived");
                continue;
            }

            // Set by the de-identifier itself whatever the file held.
            if (path.Length == 0 && SetByTheDeidentifier.Contains(element.Tag))
            {
                continue;
            }

            // Group lengths are dropped; text is re-encoded as UTF-8 everywhere, so items lose their own character set.
            if (element.Tag.Element == 0 || element.Tag == DicomTag.SpecificCharacterSet)
            {
                continue;
            }

            var action = ConfidentialityProfile.Resolve(ConfidentialityProfile.Find(element.Tag), new HashSet<DeidentificationOption>());
            switch (action)
            {
                case ProfileAction.Remove:
                    Assert.True(after is null, $"{where} (X) is still present");
                    break;
                case ProfileAction.Zero:
                    Assert.True(after is not null, $"{where} (Z) is missing");
                    Assert.True(after!.Value.IsEmpty && (after.Sequence?.Items.Count ?? 0) == 0, $"{where} (Z) is not empty");
                    break;
                case ProfileAction.Dummy when element.EffectiveVR != DicomVR.SQ && !element.Value.IsEmpty:
                    Assert.True(after is not null, $"{where} (D) is missing");
                    Assert.False(after!.Value.Span.SequenceEqual(element.Value.Span), $"{where} (D) kept its value");
                    break;
                case ProfileAction.ReplaceUid when element.EffectiveVR == DicomVR.UI && !element.Value.IsEmpty:
                    var before = original.GetString(element.Tag)!.Split('\\');
                    var now = result.GetString(element.Tag)!.Split('\\');
                    Assert.Equal(before.Length, now.Length);
                    foreach (var (old, replaced) in before.Zip(now))
                    {
                        Assert.StartsWith("2.25.", replaced);
                        Assert.NotEqual(old, replaced);
                        Assert.True(replaced.Length <= 64);
                        Assert.Equal(replaced, uidMap.TryAdd(old, replaced) ? replaced : uidMap[old]);
                    }

                    break;
                // Inside a sequence the profile replaces (D), free text the table does not list is replaced too.
                case ProfileAction.Keep when insideDummy && IsFreeText(element.EffectiveVR) && !element.Value.IsEmpty:
                    Assert.True(after is not null, $"{where} (in D) is missing");
                    Assert.NotEqual(original.GetString(element.Tag), result.GetString(element.Tag));
                    break;
                case ProfileAction.Keep when element.EffectiveVR != DicomVR.SQ && element.Fragments is null && !element.IsDeferred:
                    Assert.True(after is not null, $"{where} (K) is missing");
                    Assert.Equal(original.GetString(element.Tag) ?? Convert.ToHexString(element.Value.Span), result.GetString(element.Tag) ?? Convert.ToHexString(after!.Value.Span));
                    break;
            }

            // A content tree (D) is replaced by one empty CONTAINER; DeidentifierStructuredContentTests looks inside.
            if (element.Tag == new DicomTag(0x0040, 0xA730) && action == ProfileAction.Dummy)
            {
                Assert.True(after?.Sequence is { Items.Count: 1 }, $"{where} (D) is not one dummy item");
                continue;
            }

            if (element.Sequence is { } sequence && after?.Sequence is { } afterSequence && action is not ProfileAction.Zero)
            {
                Assert.Equal(sequence.Items.Count, afterSequence.Items.Count);
                for (var i = 0; i < sequence.Items.Count; i++)
                {
                    Compare(sequence.Items[i].Dataset, afterSequence.Items[i].Dataset, uidMap, $"{where}[{i}]/", insideDummy || action == ProfileAction.Dummy);
                }
            }
        }
    }

    private static bool IsFreeText(DicomVR vr) => vr.IsText && vr != DicomVR.CS && vr != DicomVR.UI && vr != DicomVR.IS && vr != DicomVR.DS;

    private static IEnumerable<string> KeptValues(DicomDataset dataset, bool insideDummy = false)
    {
        foreach (var element in dataset)
        {
            var action = ConfidentialityProfile.Resolve(ConfidentialityProfile.Find(element.Tag), new HashSet<DeidentificationOption>());
            if (!element.Tag.IsPrivate && element.EffectiveVR.IsText && action == ProfileAction.Keep &&
                !(insideDummy && IsFreeText(element.EffectiveVR)) && dataset.GetString(element.Tag) is { } text)
            {
                yield return text;
            }

            // Nothing inside a sequence the profile removes or empties is kept, nor free text inside one it replaces (D).
            var sequence = element.Sequence ?? (element.EffectiveVR == DicomVR.SQ ? DicomFileReader.ParseImplicitSequence(element.Tag, element.Value, dataset) : null);
            foreach (var item in action is ProfileAction.Remove or ProfileAction.Zero ? [] : sequence?.Items ?? [])
            {
                foreach (var value in KeptValues(item.Dataset, insideDummy || action == ProfileAction.Dummy))
                {
                    yield return value;
                }
            }
        }
    }
}
