using System.Diagnostics;
using System.Globalization;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Testing;

/// <summary>
/// Parse, parse + de-identify and write throughput of the proxy's DICOM code on pydicom's corpus,
/// side by side with GDCM's gdcmanon de-identifying the same files (one process per file, and one
/// process for a folder of the files it handles). Single thread on both sides.
/// </summary>
internal static class DicomThroughput
{
    public static async Task<int> RunAsync(int rounds)
    {
        var files = DicomCorpus.WellFormedPart10.Select(f => (f.ToString(), Bytes: File.ReadAllBytes(f.Path))).ToList();
        var megabytes = files.Sum(f => f.Bytes.Length) / 1e6;
        var deidentifier = new Deidentifier(new DeidentificationKeys(new byte[32], Enumerable.Repeat((byte)1, 32).ToArray(), Enumerable.Repeat((byte)2, 32).ToArray()));
        var profile = new DeidentificationProfile { AllowBurnedInAnnotation = true };
        var parsed = new List<DicomFile>();
        foreach (var (_, bytes) in files)
        {
            parsed.Add(await DicomFile.ReadAsync(new MemoryStream(bytes)));
        }

        async Task<double> Time(Func<Task> body)
        {
            await body(); // warm-up
            var watch = Stopwatch.StartNew();
            for (var r = 0; r < rounds; r++)
            {
                await body();
            }

            return watch.Elapsed.TotalSeconds / rounds;
        }

        var parse = await Time(async () =>
        {
            foreach (var (_, bytes) in files)
            {
                await DicomFile.ReadAsync(new MemoryStream(bytes));
            }
        });
        var deidentify = await Time(async () =>
        {
            foreach (var (_, bytes) in files)
            {
                await deidentifier.DeidentifyAsync(new MemoryStream(bytes), Stream.Null, profile, "load", DicomReaderLimits.Default, CancellationToken.None);
            }
        });
        var write = await Time(async () =>
        {
            foreach (var file in parsed)
            {
                await file.WriteAsync(Stream.Null);
            }
        });

        // gdcmanon: one process per file (how a script would run it), and one process over a folder.
        using var work = new TemporaryDirectory();
        var input = Directory.CreateDirectory(Path.Combine(work.Path, "in")).FullName;
        var output = Directory.CreateDirectory(Path.Combine(work.Path, "out")).FullName;
        var handled = new List<string>();
        var perFile = Stopwatch.StartNew();
        var index = 0;
        foreach (var (_, bytes) in files)
        {
            var source = Path.Combine(input, $"{index++:D4}.dcm");
            await File.WriteAllBytesAsync(source, bytes);
            if (await Gdcmanon(["-e", "-p", "benchmark", "-i", source, "-o", Path.Combine(output, Path.GetFileName(source))]) == 0)
            {
                handled.Add(source);
            }
        }

        perFile.Stop();
        var folder = Directory.CreateDirectory(Path.Combine(work.Path, "folder")).FullName;
        foreach (var source in handled)
        {
            File.Copy(source, Path.Combine(folder, Path.GetFileName(source)));
        }

        var folderOut = Directory.CreateDirectory(Path.Combine(work.Path, "folder-out")).FullName;
        var folderTime = Stopwatch.StartNew();
        await Gdcmanon(["-e", "-p", "benchmark", "--continue", "-r", "-i", folder, "-o", folderOut]);
        folderTime.Stop();
        var handledMegabytes = handled.Sum(f => new FileInfo(f).Length) / 1e6;

        string Row(string what, int count, double mb, double seconds) => string.Create(CultureInfo.InvariantCulture,
            $"| {what} | {count} | {count / seconds:F0} | {mb / seconds:F1} | {seconds / count * 1000:F3} |");

        Console.WriteLine($"# DICOM throughput on pydicom's corpus: {files.Count} files, {megabytes:F2} MB; {rounds} rounds; {Environment.ProcessorCount} cores (one used)");
        Console.WriteLine();
        Console.WriteLine("| operation | files | files/s | MB/s | ms per file |");
        Console.WriteLine("|---|---|---|---|---|");
        Console.WriteLine(Row("TrustedProxy parse (DicomFile.ReadAsync)", files.Count, megabytes, parse));
        Console.WriteLine(Row("TrustedProxy parse + de-identify + write (Deidentifier, streaming)", files.Count, megabytes, deidentify));
        Console.WriteLine(Row("TrustedProxy write (DicomFile.WriteAsync)", files.Count, megabytes, write));
        Console.WriteLine(Row("gdcmanon -e, one process per file", files.Count, megabytes, perFile.Elapsed.TotalSeconds));
        Console.WriteLine(Row($"gdcmanon -e -r, one process for the folder ({handled.Count} files it handles)", handled.Count, handledMegabytes, folderTime.Elapsed.TotalSeconds));
        Console.WriteLine();
        Console.WriteLine($"gdcmanon refused {files.Count - handled.Count} of the {files.Count} files.");
        return 0;
    }

    private static async Task<int> Gdcmanon(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("gdcmanon") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("gdcmanon (Debian libgdcm-tools) is not installed");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await Task.WhenAll(stdout, stderr);
        return process.ExitCode;
    }
}
