using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Dicom;

public sealed class DicomFileRoundTripTests
{
    /// <summary>Every Part 10 file of the corpus (test_files and charset_files) that pydicom reads.</summary>
    public static TheoryData<string> ReadableByPydicom => new(DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && !DicomCorpus.KnownBroken.Contains(f.Name)).Select(f => f.ToString()));

    [Theory]
    [MemberData(nameof(ReadableByPydicom))]
    public async Task ReadingThenWriting_ReproducesTheFileByteForByte(string name)
    {
        var path = DicomCorpus.Files.Single(f => f.ToString() == name).Path;
        var original = await File.ReadAllBytesAsync(path);

        var file = await DicomFile.ReadAsync(new MemoryStream(original));
        var written = await file.ToBytesAsync();

        Assert.True(original.AsSpan().SequenceEqual(written), $"{name}: {original.Length} bytes in, {written.Length} out, first difference at {FirstDifference(original, written)}");
    }

    [Fact]
    public async Task TheCorpusRoundTrip_CoversEveryEncoding()
    {
        var syntaxes = DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && f.TransferSyntaxUid is not null).Select(f => f.TransferSyntaxUid).ToHashSet();

        Assert.Contains(TransferSyntax.ImplicitVRLittleEndianUid, syntaxes);
        Assert.Contains(TransferSyntax.ExplicitVRLittleEndianUid, syntaxes);
        Assert.Contains(TransferSyntax.ExplicitVRBigEndianUid, syntaxes);
        Assert.Contains(TransferSyntax.DeflatedExplicitVRLittleEndianUid, syntaxes);
        Assert.Contains("1.2.840.10008.1.2.4.50", syntaxes);
        var count = DicomCorpus.Files.Count(f => f.PydicomReads && f.HasPreamble && !DicomCorpus.KnownBroken.Contains(f.Name));
        Assert.True(count >= 80, $"only {count} files");
        await Task.CompletedTask;
    }

    [Fact]
    public async Task AModifiedDeflatedFile_IsReDeflated_AndReadsBack()
    {
        var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "image_dfl.dcm"));
        file.Dataset.Set(DicomElement.Text(DicomTag.PatientId, DicomVR.LO, "CHANGED"));

        var back = await DicomFile.ReadAsync(new MemoryStream(await file.ToBytesAsync()));

        Assert.Equal("CHANGED", back.Dataset.GetString(DicomTag.PatientId));
        Assert.Equal(file.Dataset.Count, back.Dataset.Count);
    }

    private static int FirstDifference(byte[] a, byte[] b)
    {
        var length = Math.Min(a.Length, b.Length);
        for (var i = 0; i < length; i++)
        {
            if (a[i] != b[i])
            {
                return i;
            }
        }

        return length;
    }
}
