using System.Buffers.Binary;
using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Dicom;

public sealed class DicomHeaderTests
{
    public static TheoryData<string> WellFormed => new(DicomCorpus.WellFormedPart10.Select(f => f.ToString()));

    [Theory]
    [MemberData(nameof(WellFormed))]
    public async Task EveryWellFormedCorpusFile_IsWalkedToTheEnd_AndAgreesWithPydicom(string name)
    {
        var expected = DicomCorpus.Files.Single(f => f.ToString() == name);
        await using var file = File.OpenRead(expected.Path);

        var summary = await DicomHeader.ReadAsync(file, DicomReaderLimits.Default, CancellationToken.None);

        Assert.Equal(expected.TransferSyntaxUid, summary.TransferSyntaxUid);
        Assert.Equal(expected.PatientId, summary.PatientId);
        Assert.Equal(expected.StudyInstanceUid, summary.StudyInstanceUid);
        Assert.Equal(expected.SeriesInstanceUid, summary.SeriesInstanceUid);
        Assert.Equal(expected.SopInstanceUid, summary.SopInstanceUid);
        Assert.Equal(expected.Modality, summary.Modality);
        Assert.Equal(file.Length, file.Position);
    }

    [Theory]
    [MemberData(nameof(WellFormed))]
    public async Task TheIdentifyingAttributes_AreHandedOnOnce_WithWhatTheWholeHeaderSays(string name)
    {
        var expected = DicomCorpus.Files.Single(f => f.ToString() == name);
        await using var file = File.OpenRead(expected.Path);
        var calls = 0;
        (string? Patient, string? Study, string? Modality, string? Sop) seen = default;

        var whole = await DicomHeader.ReadAsync(file, DicomReaderLimits.Default, (identified, _) =>
        {
            calls++;
            seen = (identified.PatientId, identified.StudyInstanceUid, identified.Modality, identified.SopInstanceUid);
            return Task.CompletedTask;
        }, CancellationToken.None);

        Assert.Equal(1, calls);
        Assert.Equal((whole.PatientId, whole.StudyInstanceUid, whole.Modality, whole.SopInstanceUid), seen);
    }

    [Fact]
    public async Task TheIdentifyingAttributes_AreHandedOn_BeforeThePixelsAreRead()
    {
        var bytes = new DicomFileBuilder().Patient("EARLY-1", "Early^Decision").Study("1.2.826.0.1.69.1", "1.2.826.0.1.69.1.1", "20230101", "CT").Image(512, 512, seed: 2).Build();
        var stream = new CountingStream(bytes);
        long consumedAtDecision = -1;

        await DicomHeader.ReadAsync(stream, DicomReaderLimits.Default, (identified, _) =>
        {
            Assert.Equal("EARLY-1", identified.PatientId);
            consumedAtDecision = stream.Position;
            return Task.CompletedTask;
        }, CancellationToken.None);

        // 512 KiB of pixels; the reader has taken at most its buffer beyond the header by then.
        Assert.InRange(consumedAtDecision, 1, bytes.Length - (256 * 1024));
        Assert.Equal(bytes.Length, stream.Position);
    }

    [Fact]
    public async Task ADecisionThatThrows_StopsTheRead_WhereItWas()
    {
        var bytes = new DicomFileBuilder().Patient("EARLY-2", "Early^Refusal").Image(512, 512, seed: 3).Build();
        var stream = new CountingStream(bytes);

        await Assert.ThrowsAsync<InvalidOperationException>(() => DicomHeader.ReadAsync(stream, DicomReaderLimits.Default, (_, _) => throw new InvalidOperationException("refused"), CancellationToken.None));

        Assert.True(stream.Position < bytes.Length - (256 * 1024), $"{stream.Position} of {bytes.Length} bytes read");
    }

    /// <summary>A forward-only stream over bytes that says how far it has been read.</summary>
    private sealed class CountingStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public override bool CanSeek => false;
    }

    [Theory]
    [InlineData("MR_truncated.dcm", DicomFormatProblem.Truncated)]
    [InlineData("rtplan_truncated.dcm", DicomFormatProblem.Truncated)]
    [InlineData("no_meta.dcm", DicomFormatProblem.NotPart10)]
    [InlineData("ExplVR_BigEndNoMeta.dcm", DicomFormatProblem.NotPart10)]
    [InlineData("ExplVR_LitEndNoMeta.dcm", DicomFormatProblem.NotPart10)]
    [InlineData("rtstruct.dcm", DicomFormatProblem.NotPart10)]
    [InlineData("meta_missing_tsyntax.dcm", DicomFormatProblem.InvalidFileMeta)]
    public async Task DeliberatelyBrokenCorpusFiles_GiveATypedError(string name, DicomFormatProblem problem)
    {
        await using var file = File.OpenRead(Path.Combine(DicomCorpus.TestFiles, name));

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => DicomHeader.ReadAsync(file, DicomReaderLimits.Default, CancellationToken.None));

        Assert.Equal(problem, error.Problem);
        Assert.InRange(error.Offset, 0, new FileInfo(file.Name).Length);
    }

    [Fact]
    public async Task AFileCutShortAnywhere_IsRefusedAsTruncated()
    {
        var bytes = new DicomFileBuilder().Patient("P1", "Doe^Jane").PixelData(1000).Build();
        foreach (var cut in new[] { 140, 200, bytes.Length - 500, bytes.Length - 1 })
        {
            var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(bytes[..cut]));
            Assert.Equal(DicomFormatProblem.Truncated, error.Problem);
        }
    }

    [Fact]
    public async Task ADeclaredLengthFarBeyondTheFile_IsRefusedAsTruncated_WithoutAllocatingIt()
    {
        var bytes = new DicomFileBuilder().PixelData(16).Build();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 16 - 4), 0xFFFF_FFF0);
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(bytes));

        Assert.Equal(DicomFormatProblem.Truncated, error.Problem);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore < 16 * 1024 * 1024);
    }

    [Fact]
    public async Task ThousandsOfNestedSequences_HitTheDepthLimit_NotTheStack()
    {
        var bytes = NestedSequences(depth: 20_000);

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(bytes));

        Assert.Equal(DicomFormatProblem.LimitExceeded, error.Problem);
        Assert.Contains("nest", error.Detail);
    }

    [Fact]
    public async Task NestingWithinTheLimit_IsAccepted()
    {
        var summary = await Read(NestedSequences(depth: 40));

        Assert.NotNull(summary.SopInstanceUid);
    }

    [Fact]
    public async Task TooManyElements_HitTheElementLimit()
    {
        var builder = new DicomFileBuilder();
        for (ushort i = 1; i < 200; i++)
        {
            builder.Text(0x0009, i, "LO", "x");
        }

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(builder.Build(), new DicomReaderLimits { MaxElements = 100 }));

        Assert.Equal(DicomFormatProblem.LimitExceeded, error.Problem);
    }

    [Fact]
    public async Task AValueLongerThanTheLimit_IsRefused()
    {
        var bytes = new DicomFileBuilder().PixelData(10_000).Build();

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(bytes, new DicomReaderLimits { MaxValueLength = 4096 }));

        Assert.Equal(DicomFormatProblem.LimitExceeded, error.Problem);
    }

    [Fact]
    public async Task AnElementOverrunningItsItem_IsMalformed()
    {
        // An item of declared length 8 holding an element of 12 bytes.
        var item = new List<byte>();
        item.AddRange(Tag(0xFFFE, 0xE000));
        item.AddRange(BitConverter.GetBytes(8u));
        item.AddRange(Tag(0x0010, 0x0020));
        item.AddRange("LO"u8.ToArray());
        item.AddRange(BitConverter.GetBytes((ushort)4));
        item.AddRange("ABCD"u8.ToArray());
        var sequence = new List<byte>();
        sequence.AddRange(Tag(0x0008, 0x1140));
        sequence.AddRange("SQ"u8.ToArray());
        sequence.AddRange(new byte[2]);
        sequence.AddRange(BitConverter.GetBytes((uint)item.Count));
        sequence.AddRange(item);
        var bytes = new DicomFileBuilder().Build().Concat(sequence).ToArray();

        var error = await Assert.ThrowsAsync<DicomFormatException>(() => Read(bytes));

        Assert.Equal(DicomFormatProblem.Malformed, error.Problem);
    }

    private static async Task<DicomHeader> Read(byte[] bytes, DicomReaderLimits? limits = null) =>
        await DicomHeader.ReadAsync(new MemoryStream(bytes), limits ?? DicomReaderLimits.Default, CancellationToken.None);

    private static byte[] NestedSequences(int depth)
    {
        var body = new List<byte>();
        for (var i = 0; i < depth; i++)
        {
            body.AddRange(Tag(0x0040, 0xA730)); // Content Sequence
            body.AddRange("SQ"u8.ToArray());
            body.AddRange(new byte[2]);
            body.AddRange(BitConverter.GetBytes(0xFFFFFFFFu));
            body.AddRange(Tag(0xFFFE, 0xE000));
            body.AddRange(BitConverter.GetBytes(0xFFFFFFFFu));
        }

        for (var i = 0; i < depth; i++)
        {
            body.AddRange(Tag(0xFFFE, 0xE00D));
            body.AddRange(new byte[4]);
            body.AddRange(Tag(0xFFFE, 0xE0DD));
            body.AddRange(new byte[4]);
        }

        return new DicomFileBuilder().Build().Concat(body).ToArray();
    }

    private static byte[] Tag(ushort group, ushort element) => [.. BitConverter.GetBytes(group), .. BitConverter.GetBytes(element)];
}
