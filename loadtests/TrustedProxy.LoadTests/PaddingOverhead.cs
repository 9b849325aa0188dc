using System.Globalization;
using TrustedProxy.Crypto;
using TrustedProxy.Testing;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>What each padding scheme costs and leaves visible on pydicom's corpus: stored bytes over ciphertext bytes, and the number of distinct object sizes.</summary>
internal static class PaddingOverhead
{
    public static int Run()
    {
        var files = DicomCorpus.WellFormedPart10.ToList();
        var ciphertext = files.Select(f => SegmentedEnvelope.CiphertextLength(new FileInfo(f.Path).Length)).ToList();
        Console.WriteLine($"# padding overhead on pydicom's corpus: {files.Count} files, {ciphertext.Sum() / 1024} KiB of ciphertext (median {Median(ciphertext) / 1024.0:F1} KiB)");
        Console.WriteLine();
        Console.WriteLine("| scheme | stored / ciphertext | worst file | distinct object sizes | objects |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var scheme in new IPaddingScheme[] { new NoPadding(), new PadmePadding(), new PowerOfTwoPadding(), new FixedBlockPadding(4096), new FixedBlockPadding(64 * 1024), new FixedBlockPadding(128 * 1024) })
        {
            var layouts = ciphertext.Select(scheme.Layout).ToList();
            var stored = layouts.Sum(l => l.StoredLength);
            var worst = ciphertext.Zip(layouts, (c, l) => (double)l.StoredLength / c).Max();
            var name = scheme is FixedBlockPadding fixedBlocks ? $"fixed-blocks {fixedBlocks.BlockSize / 1024} KiB" : scheme.Name;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {100.0 * stored / ciphertext.Sum() - 100:+0.0;-0.0} % | ×{worst:F1} | {layouts.Select(l => l.Length).Distinct().Count()} | {layouts.Sum(l => l.Count)} |"));
        }

        return 0;
    }

    private static double Median(List<long> values) => values.Order().ElementAt(values.Count / 2);
}
