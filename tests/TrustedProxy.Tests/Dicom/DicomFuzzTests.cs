using System.Buffers.Binary;
using System.Security.Cryptography;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Dicom;

/// <summary>
/// Mutated corpus files (bit flips, truncations, huge declared lengths, thousands of nested
/// sequences, splices) through the reader, the writer and the de-identifier: each input must end
/// in success or a typed error, within a time bound and a memory bound. An input that breaks this
/// is written to Regressions/ and fails the run. Iterations per file: TPROXY_FUZZ_ITERATIONS (default
/// 30); the seed is fixed per file, so a run is the same every time and a failure reproduces.
/// </summary>
public sealed class DicomFuzzTests
{
    private static readonly DicomReaderLimits Limits = FuzzLimits.Dicom;

    private static readonly TimeSpan TimeBound = TimeSpan.FromSeconds(10);
    private const long MemoryBound = 96L * 1024 * 1024;
    private readonly Deidentifier _deidentifier = new(new DeidentificationKeys(new byte[32], new byte[32], new byte[32]));

    public static TheoryData<string> Corpus => new(DicomCorpus.WellFormedPart10.Select(f => f.ToString()));

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task MutatedFiles_EndInSuccessOrATypedError_WithinTimeAndMemoryBounds(string name)
    {
        var original = await File.ReadAllBytesAsync(DicomCorpus.Files.Single(f => f.ToString() == name).Path);
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("TPROXY_FUZZ_ITERATIONS"), out var n) ? n : 30;
        // A seed fixed by the file's name (string.GetHashCode differs from process to process), so a
        // failure names a mutation that reproduces.
        var random = new Random(BinaryPrimitives.ReadInt32LittleEndian(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name))) ^ 0x5EED);
        for (var i = 0; i < iterations; i++)
        {
            var input = Mutate(original, random, i);
            var failure = await RunAsync(input);
            if (failure is not null)
            {
                var kept = KeepRegression(input);
                Assert.Fail($"{name}, mutation {i}: {failure} (kept as {kept})");
            }
        }
    }

    [Fact]
    public async Task RegressionInputs_GiveOnlyTypedErrors()
    {
        foreach (var path in Directory.EnumerateFiles(RegressionDirectory, "*.dcm"))
        {
            Assert.Null(await RunAsync(await File.ReadAllBytesAsync(path)));
        }
    }

    [Fact]
    public async Task ThousandsOfNestedSequences_FailTypedAndQuickly_InEveryComponent()
    {
        var header = new DicomFileBuilder().Build();
        var bomb = new List<byte>(header);
        for (var i = 0; i < 50_000; i++)
        {
            bomb.AddRange([0x40, 0x00, 0x30, 0xA7, (byte)'S', (byte)'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }

        Assert.Null(await RunAsync([.. bomb]));
    }

    // Returns null when every component ended in success or a typed error in bounds. The work runs
    // on a thread of its own, synchronously (every stream here completes at once), so that the
    // thread's allocation counter (GC.GetAllocatedBytesForCurrentThread, not the process's memory,
    // which other tests running in parallel move) sees all of it and nothing else. An await that
    // resumed on another thread would hide what was allocated there, so a component whose task is
    // not complete when its call returns is itself a failure: the bound would no longer be measured.
    private Task<string?> RunAsync(byte[] input)
    {
        long spent = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                Expect(() => DicomHeader.ReadAsync(new MemoryStream(input), Limits, CancellationToken.None)).GetAwaiter().GetResult();
                Expect(async () =>
                {
                    var file = await DicomFile.ReadAsync(new MemoryStream(input), Limits);
                    await file.ToBytesAsync();
                }).GetAwaiter().GetResult();
                Expect(() => _deidentifier.DeidentifyAsync(new MemoryStream(input), Stream.Null, new DeidentificationProfile { AllowBurnedInAnnotation = true }, "Haukeland", Limits, CancellationToken.None)).GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                failure = ex;
            }

            spent = GC.GetAllocatedBytesForCurrentThread() - allocated;
        })
        { IsBackground = true, Name = "fuzz input" };
        thread.Start();
        if (!thread.Join(TimeBound))
        {
            return Task.FromResult<string?>($"did not finish within {TimeBound.TotalSeconds} s");
        }

        return Task.FromResult(failure is not null
            ? $"{failure.GetType().Name}: {failure.Message}"
            : spent > MemoryBound ? $"allocated {spent / (1024 * 1024)} MiB" : null);
    }

    private static async Task Expect(Func<Task> action)
    {
        try
        {
            var task = action();
            if (!task.IsCompleted)
            {
                throw new InvalidOperationException("a component went asynchronous on a memory stream; its allocations would escape this thread's count");
            }

            await task;
        }
        catch (DicomFormatException)
        {
        }
        catch (DeidentificationRefusedException)
        {
        }
    }

    private static byte[] Mutate(byte[] original, Random random, int iteration)
    {
        var data = (byte[])original.Clone();
        switch (iteration % 6)
        {
            case 0: // bit flips
                for (var k = 0; k < 1 + random.Next(8); k++)
                {
                    var at = 128 + random.Next(data.Length - 128);
                    data[at] ^= (byte)(1 << random.Next(8));
                }

                return data;
            case 1: // truncation
                return data[..(132 + random.Next(Math.Max(1, data.Length - 132)))];
            case 2: // a declared length far beyond the file
                {
                    var at = 132 + random.Next(Math.Max(1, data.Length - 136));
                    uint[] huge = [0xFFFFFFF0, 0x7FFFFFFF, 0x10000000, 0xFFFFFFFF, 0xFFFE];
                    BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), huge[random.Next(huge.Length)]);
                    return data;
                }

            case 3: // nested undefined-length sequences spliced in
                {
                    var at = 132 + random.Next(Math.Max(1, data.Length - 132));
                    var depth = 1 + random.Next(3000);
                    var nested = Enumerable.Repeat<byte[]>([0x08, 0x00, 0x15, 0x11, (byte)'S', (byte)'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF], depth).SelectMany(b => b);
                    return [.. data[..at], .. nested, .. data[at..]];
                }

            case 4: // a chunk repeated
                {
                    var start = 132 + random.Next(Math.Max(1, data.Length - 132));
                    var length = Math.Min(data.Length - start, 1 + random.Next(512));
                    return [.. data[..start], .. data.AsSpan(start, length), .. data[start..]];
                }

            default: // random bytes overwritten
                {
                    var at = 132 + random.Next(Math.Max(1, data.Length - 132));
                    var length = Math.Min(data.Length - at, 1 + random.Next(64));
                    random.NextBytes(data.AsSpan(at, length));
                    return data;
                }
        }
    }

    private static string RegressionDirectory => Repository.Path("tests", "TrustedProxy.Tests", "Dicom", "Regressions");

    private static string KeepRegression(byte[] input)
    {
        var path = Path.Combine(RegressionDirectory, $"crash-{Convert.ToHexStringLower(SHA256.HashData(input))[..16]}.dcm");
        File.WriteAllBytes(path, input);
        return path;
    }
}
