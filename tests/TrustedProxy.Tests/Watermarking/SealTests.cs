using System.Buffers.Binary;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>Ingest seal and retrieval check: any change to the pixels, a bound header field or the frame order is found.</summary>
public sealed class SealTests
{
    private static readonly SealFields Fields = new("dhabxnd5er4ct6uxl3iojri7oq", "St Olav", DateTimeOffset.FromUnixTimeSeconds(1_790_000_000));

    /// <summary>Images of each kind: corpus CT (16-bit signed), RGB, YBR_FULL_422, big endian, padded; generated 12-bit with overlay garbage, multi-frame.</summary>
    public static TheoryData<string> Images => new(
        "test_files/CT_small.dcm", "test_files/SC_rgb_jpeg_dcmd.dcm", "test_files/SC_ybr_full_422_uncompressed.dcm", "test_files/MR_small_bigendian.dcm",
        "test_files/MR_small_padded.dcm", "generated:garbage", "generated:multiframe");

    [Theory]
    [MemberData(nameof(Images))]
    public async Task AnUntouchedSealedImage_AlwaysVerifies_AndIsRestoredBitExact(string name)
    {
        var (original, sealedBytes) = await SealAsync(name);
        using var watermarker = WatermarkTesting.Watermarker();

        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        var verification = watermarker.VerifyAndRestore(file, Fields.RecordHandle);

        Assert.Equal(SealStatus.Verified, verification.Status);
        var restored = await file.ToBytesAsync();
        Assert.True(original.AsSpan().SequenceEqual(restored), $"{name}: not restored bit-exact");
    }

    [Theory]
    [MemberData(nameof(Images))]
    public async Task ChangingOneSample_IsDetected_EveryTime(string name)
    {
        var (_, sealedBytes) = await SealAsync(name);
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        var image = PixelImage.FromDicom(file);
        var pixels = WatermarkTesting.PixelData(file);
        var samples = image.FileSamplesPerFrame * image.Frames;
        var bytesPerSample = image.BitsAllocated / 8;
        var random = new Random(name.Length);

        // The first and last samples (header pixels), then random samples anywhere, in any frame;
        // alternately the lowest stored bit and, where there is one, a bit outside the stored bits.
        var positions = new List<int> { 0, 1, image.Columns + 1, 2 * image.Columns + 2, samples - 1 };
        positions.AddRange(Enumerable.Range(0, 150).Select(_ => random.Next(samples)));
        var outside = image.BitsAllocated > image.HighBit + 1 ? image.HighBit + 1 : (int?)null;
        var trial = 0;
        foreach (var sample in positions)
        {
            var bit = trial++ % 2 == 1 && outside is { } high ? high : image.HighBit - image.BitsStored + 1;
            var tampered = (byte[])pixels.Clone();
            FlipBit(tampered, sample, bit, bytesPerSample, image.BigEndian);
            Replace(file, tampered);

            var verification = watermarker.VerifyAndRestore(file);

            Assert.True(verification.Status is SealStatus.IntegrityFailure or SealStatus.NoMark, $"{name}: sample {sample} bit {bit}: {verification.Status}");
            Assert.True(tampered.AsSpan().SequenceEqual(WatermarkTesting.PixelData(file)), "a refused file must be left as it was");
        }
    }

    [Fact]
    public async Task ADeflatedFile_IsNotSealedByDefault_AndWithTheOption_ItsPixelsComeBackExactly()
    {
        var original = await File.ReadAllBytesAsync(Path.Combine(DicomCorpus.TestFiles, "image_dfl.dcm"));
        var file = await DicomFile.ReadAsync(new MemoryStream(original));
        var pixels = WatermarkTesting.PixelData(file);
        using var byDefault = WatermarkTesting.Watermarker();

        var refused = byDefault.Seal(file, Fields);

        Assert.Equal(WatermarkRefusalReason.NotNative, refused.Refusal!.Reason);
        Assert.Contains("deflated", refused.Refusal.Message);

        using var allowing = new DicomWatermarker(WatermarkTesting.Key, new WatermarkOptions(AllowDeflated: true));
        Assert.True(allowing.Seal(file, Fields).Embedded);
        var stored = await DicomFile.ReadAsync(new MemoryStream(await file.ToBytesAsync()));
        Assert.Equal(SealStatus.Verified, allowing.VerifyAndRestore(stored).Status);
        Assert.Equal(pixels, WatermarkTesting.PixelData(stored));
    }

    [Fact]
    public async Task ChangingTheBytesAfterTheLastFrame_IsDetected()
    {
        var (_, sealedBytes) = await SealAsync("test_files/MR_small_padded.dcm");
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        var pixels = WatermarkTesting.PixelData(file);
        pixels[^1] ^= 0x01;
        Replace(file, pixels);

        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyAndRestore(file).Status);
    }

    public static TheoryData<string, string> BoundFields => new()
    {
        { "(0008,0018) SOP Instance UID", "uid" },
        { "(0008,0016) SOP Class UID", "uid" },
        { "(0020,000D) Study Instance UID", "uid" },
        { "(0020,000E) Series Instance UID", "uid" },
        { "(0010,0020) Patient ID", "text" },
        { "(0028,0004) Photometric Interpretation", "photometric" },
        { "(0028,0010) Rows", "us" },
        { "(0028,0011) Columns", "us" },
        { "(0028,0100) Bits Allocated", "us" },
        { "(0028,0101) Bits Stored", "us" },
        { "(0028,0102) High Bit", "us" },
        { "(0028,0103) Pixel Representation", "us" },
        { "(0028,0002) Samples per Pixel", "us" },
        { "(0028,0006) Planar Configuration added", "us" },
        { "(0028,0008) Number of Frames", "frames" },
        { "(0010,0020) Patient ID removed", "remove" },
    };

    [Theory]
    [MemberData(nameof(BoundFields))]
    public async Task ChangingOneBoundHeaderField_IsDetected(string field, string change)
    {
        var (_, sealedBytes) = await SealAsync("generated:multiframe");
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        var tag = new DicomTag(Convert.ToUInt16(field[1..5], 16), Convert.ToUInt16(field[6..10], 16));
        var encoding = file.Dataset.Encoding;
        switch (change)
        {
            case "uid":
                file.Dataset.Set(DicomElement.Text(tag, DicomVR.UI, file.Dataset.GetString(tag) + ".1"));
                break;
            case "text":
                file.Dataset.Set(DicomElement.Text(tag, DicomVR.LO, "WM-PATIENT-2"));
                break;
            case "photometric":
                file.Dataset.Set(DicomElement.Text(tag, DicomVR.CS, "MONOCHROME1"));
                break;
            case "frames":
                file.Dataset.Set(DicomElement.Text(tag, DicomVR.IS, "3"));
                break;
            case "remove":
                file.Dataset.Remove(tag);
                break;
            default:
                var value = file.Dataset.GetUInt16(tag) ?? 0;
                // A value that still describes a readable image where one exists (BitsStored 12 → 11, HighBit 11 → 12).
                file.Dataset.Set(DicomElement.UInt16(tag, (ushort)(value ^ 1), encoding));
                break;
        }

        var verification = watermarker.VerifyAndRestore(file);

        Assert.NotEqual(SealStatus.Verified, verification.Status);
    }

    [Fact]
    public async Task ChangingAnUnboundHeaderField_DoesNotBreakTheSeal()
    {
        // What the seal binds is a choice: names, dates and descriptions are left to the record's signature.
        var (_, sealedBytes) = await SealAsync("generated:multiframe");
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        file.Dataset.Set(DicomElement.Text(DicomTag.PatientName, DicomVR.PN, "Renamed^Patient"));

        Assert.Equal(SealStatus.Verified, watermarker.VerifyAndRestore(file).Status);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(0, 3)]
    public async Task SwappingTwoFrames_IsDetected(int first, int second)
    {
        var (_, sealedBytes) = await SealAsync("generated:multiframe");
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));
        var image = PixelImage.FromDicom(file);
        var pixels = WatermarkTesting.PixelData(file);
        var a = pixels.AsSpan(first * image.FrameBytes, image.FrameBytes).ToArray();
        pixels.AsSpan(second * image.FrameBytes, image.FrameBytes).CopyTo(pixels.AsSpan(first * image.FrameBytes));
        a.CopyTo(pixels.AsSpan(second * image.FrameBytes));
        Replace(file, pixels);

        var verification = watermarker.VerifyAndRestore(file);

        Assert.Equal(SealStatus.IntegrityFailure, verification.Status);
        Assert.Contains("reordered", verification.Detail);
    }

    [Fact]
    public async Task SwappingFramesOfTheSameContent_IsDetected()
    {
        // Identical frames get identical pixels but not identical marks: each carries its index.
        var spec = new ImageSpec { Frames = 1, BitsStored = 12 };
        var single = PixelImage.FromDicom(await SyntheticDicom.CreateAsync(spec)).PixelData.ToArray();
        var file = await SyntheticDicom.CreateAsync(spec with { Frames = 2 });
        var twice = single.Concat(single).ToArray();
        Replace(file, twice);
        using var watermarker = WatermarkTesting.Watermarker();
        Assert.True(watermarker.Seal(file, Fields).Embedded);
        var image = PixelImage.FromDicom(file);
        var pixels = WatermarkTesting.PixelData(file);
        var swapped = pixels[image.FrameBytes..(2 * image.FrameBytes)].Concat(pixels[..image.FrameBytes]).ToArray();
        Replace(file, swapped);

        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyAndRestore(file).Status);
    }

    [Fact]
    public async Task UnderAnotherKey_ThereIsNoValidMark()
    {
        var (_, sealedBytes) = await SealAsync("test_files/CT_small.dcm");
        using var other = WatermarkTesting.Watermarker(WatermarkTesting.OtherKey);
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));

        Assert.NotEqual(SealStatus.Verified, other.VerifyAndRestore(file).Status);
        Assert.Equal(TraceStatus.NoValidMark, other.Trace(file).Status);
        var after = await file.ToBytesAsync();
        Assert.True(sealedBytes.AsSpan().SequenceEqual(after));
    }

    [Fact]
    public async Task ASealForAnotherRecord_IsAnIntegrityFailure()
    {
        var (_, sealedBytes) = await SealAsync("test_files/CT_small.dcm");
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(new MemoryStream(sealedBytes));

        var verification = watermarker.VerifyAndRestore(file, expectedHandle: "anotherhandle");

        Assert.Equal(SealStatus.IntegrityFailure, verification.Status);
        var after = await file.ToBytesAsync();
        Assert.True(sealedBytes.AsSpan().SequenceEqual(after));
    }

    [Fact]
    public async Task AnImageNeverSealed_HasNoMark()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));

        Assert.Equal(SealStatus.NoMark, watermarker.VerifyAndRestore(file).Status);
        Assert.Equal(TraceStatus.NoValidMark, watermarker.Trace(file).Status);
    }

    [Fact]
    public async Task TracingASealedOriginal_ReportsItsSeal()
    {
        var (_, sealedBytes) = await SealAsync("test_files/CT_small.dcm");
        using var watermarker = WatermarkTesting.Watermarker();

        var trace = watermarker.Trace(await DicomFile.ReadAsync(new MemoryStream(sealedBytes)));

        Assert.Equal(TraceStatus.Sealed, trace.Status);
        Assert.Equal(Fields.RecordHandle, trace.Seal!.RecordHandle);
    }

    [Fact]
    public void AWholeFileSeal_BindsTheDigest_TheRecord_AndTheOrigin()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        using var other = WatermarkTesting.Watermarker(WatermarkTesting.OtherKey);
        var digest = System.Security.Cryptography.SHA256.HashData("a file too large to hold in memory"u8);

        var seal = watermarker.CreateFileSeal(Fields, digest);

        Assert.True(seal.Length <= 63);
        Assert.Equal(SealStatus.Verified, watermarker.VerifyFileSeal(seal, digest, Fields.RecordHandle, Fields.OriginOrganisation).Status);
        var changed = digest.ToArray();
        changed[^1] ^= 0x01;
        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyFileSeal(seal, changed, Fields.RecordHandle).Status);
        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyFileSeal(seal, digest, "anotherhandle").Status);
        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyFileSeal(seal, digest, Fields.RecordHandle, "Another Hospital").Status);
        Assert.Equal(SealStatus.IntegrityFailure, other.VerifyFileSeal(seal, digest, Fields.RecordHandle).Status);
        Assert.Equal(SealStatus.NoMark, watermarker.VerifyFileSeal(seal.AsSpan(0, 10), digest, Fields.RecordHandle).Status);
    }

    [Fact]
    public async Task AWholeFileSeal_DoesNotPassForADetachedSeal_OfTheSameFields()
    {
        // The pixel source marker separates the two MACs: a seal over a digest never verifies as one over pixels.
        using var watermarker = WatermarkTesting.Watermarker();
        var file = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var detached = watermarker.CreateDetachedSeal(file, Fields);
        var digest = System.Security.Cryptography.SHA256.HashData(await file.ToBytesAsync());

        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyFileSeal(detached, digest, Fields.RecordHandle).Status);
        Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyDetachedSeal(file, watermarker.CreateFileSeal(Fields, digest)).Status);
    }

    [Fact]
    public async Task CompressedImages_GetADetachedSeal_ThatDetectsChangesToFragmentsAndHeader()
    {
        using var watermarker = WatermarkTesting.Watermarker();
        using var other = WatermarkTesting.Watermarker(WatermarkTesting.OtherKey);
        var compressed = DicomCorpus.Files.Where(f => f.PydicomReads && f.HasPreamble && f.IsCompressed && !DicomCorpus.KnownBroken.Contains(f.Name)).Take(12).ToList();
        var checkedImages = 0;
        foreach (var entry in compressed)
        {
            var file = await DicomFile.ReadAsync(entry.Path);
            if (file.Dataset.Find(DicomTag.PixelData) is not { Fragments: { } fragments })
            {
                continue;
            }

            var seal = watermarker.CreateDetachedSeal(file, Fields);
            Assert.True(seal.Length <= 63);
            Assert.Equal(SealStatus.Verified, watermarker.VerifyDetachedSeal(file, seal, Fields.RecordHandle).Status);
            Assert.Equal(SealStatus.IntegrityFailure, other.VerifyDetachedSeal(file, seal).Status);
            Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyDetachedSeal(file, seal, "another").Status);

            // One byte of the last fragment.
            var items = fragments.Items.Select(f => f.ToArray()).ToList();
            items[^1][items[^1].Length / 2] ^= 0x01;
            var tampered = await WatermarkTesting.CopyAsync(file);
            tampered.Dataset.Set(DicomElement.Create(DicomTag.PixelData, file.Dataset.Find(DicomTag.PixelData)!.VR, new DicomFragments([.. items.Select(i => (ReadOnlyMemory<byte>)i)])));
            Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyDetachedSeal(tampered, seal).Status);

            // One bound header field.
            var renamed = await WatermarkTesting.CopyAsync(file);
            renamed.Dataset.Set(DicomElement.Text(DicomTag.SopInstanceUid, DicomVR.UI, "1.2.3.4"));
            Assert.Equal(SealStatus.IntegrityFailure, watermarker.VerifyDetachedSeal(renamed, seal).Status);
            checkedImages++;
        }

        Assert.True(checkedImages >= 5, $"only {checkedImages} compressed images");
    }

    [Fact]
    public void ExtractingFromArbitraryOrDamagedPixels_NeverThrows()
    {
        // Random frames of every depth under the right key, and marked frames with random damage:
        // extraction answers false (or, for damage outside the mark, the original message), never an exception.
        var keystream = WatermarkTesting.Keystream();
        var random = new Random(99);
        foreach (var bits in new[] { 2, 8, 12, 16, 32 })
        {
            for (var trial = 0; trial < 40; trial++)
            {
                var frame = new FrameBuffer(random.Next(5, 70), random.Next(28, 90), random.Next(2) == 0 ? 1 : 3, bits);
                for (var i = 0; i < frame.Values.Length; i++)
                {
                    frame.Values[i] = (int)random.NextInt64(frame.Min, (long)frame.Max + 1);
                }

                Assert.False(PredictionErrorExpansion.TryExtract(frame, keystream, out _));
            }
        }

        var marked = new FrameBuffer(80, 80, 1, 12);
        for (var i = 0; i < marked.Values.Length; i++)
        {
            marked.Values[i] = (int)(800 * Math.Sin(i / 300.0)) + random.Next(-4, 5);
        }

        PredictionErrorExpansion.Embed(marked, WatermarkTesting.Message512, 0, keystream, 0);
        for (var trial = 0; trial < 300; trial++)
        {
            var damaged = marked.Clone();
            for (var n = random.Next(1, 20); n > 0; n--)
            {
                var at = random.Next(damaged.Values.Length);
                damaged.Values[at] = Math.Clamp(damaged.Values[at] + random.Next(-3, 4), damaged.Min, damaged.Max);
            }

            if (PredictionErrorExpansion.TryExtract(damaged, keystream, out var mark))
            {
                Assert.Equal(WatermarkTesting.Message512.Length, mark.Message.Length);
            }
        }
    }

    internal static async Task<(byte[] Original, byte[] Sealed)> SealAsync(string name)
    {
        var original = name switch
        {
            "generated:garbage" => await SyntheticDicom.BuildAsync(new ImageSpec { BitsStored = 12, HighBit = 13, GarbageOutsideStoredBits = true }),
            "generated:multiframe" => await SyntheticDicom.BuildAsync(new ImageSpec { Frames = 4, BitsStored = 12, GarbageOutsideStoredBits = true }),
            _ => await File.ReadAllBytesAsync(Path.Combine(DicomCorpus.DataDirectory, name)),
        };
        var file = await DicomFile.ReadAsync(new MemoryStream(original));
        using var watermarker = WatermarkTesting.Watermarker();
        var result = watermarker.Seal(file, Fields);
        Assert.True(result.Embedded, $"{name}: {result.Refusal}");
        return (original, await file.ToBytesAsync());
    }

    private static void Replace(DicomFile file, byte[] pixels) =>
        file.Dataset.Set(DicomElement.Create(DicomTag.PixelData, file.Dataset.Find(DicomTag.PixelData)!.VR, pixels));

    private static void FlipBit(byte[] data, int sample, int bit, int bytesPerSample, bool bigEndian)
    {
        var at = sample * bytesPerSample;
        switch (bytesPerSample)
        {
            case 1:
                data[at] ^= (byte)(1 << bit);
                break;
            case 2:
                var word = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(at)) : BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(at));
                word ^= (ushort)(1 << bit);
                if (bigEndian)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(at), word);
                }
                else
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(at), word);
                }

                break;
            default:
                var value = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at)) ^ (1u << bit);
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), value);
                break;
        }
    }
}
