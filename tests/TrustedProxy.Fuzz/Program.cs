using System.Diagnostics;
using SharpFuzz;
using TrustedProxy.Fuzz;

// tools/fuzz.sh is the way in (docs/fuzzing.md). Commands:
//   fuzz <target>              under afl-fuzz: SharpFuzz's fork server runs the target on each input
//   replay <target> <path>...  runs files (or every file of a directory) once each and says how each
//                              ended: for triage of crashes/ and hangs/, and to check a corpus
//   seed <target> <directory>  writes the generated seeds (OT messages, envelopes, multiparts, PNGs)
// Nothing of the instrumented assemblies may run before Fuzzer.Run has mapped AFL's coverage map:
// their probes write to it, and before then they write through a null pointer. So the targets
// (whose static fields construct the parsers' options) are only named here, and looked up inside the run.
string[] names = ["dicom", "multipart", "png", "policy", "ot", "envelope"];
if (args.Length < 2 || !names.Contains(args[1]))
{
    Console.Error.WriteLine($"usage: TrustedProxy.Fuzz fuzz|replay|seed <{string.Join('|', names)}> [paths]");
    return 2;
}

switch (args[0])
{
    case "fuzz":
        // In process (not Fuzzer.OutOfProcess): several times faster, and a crash that kills the
        // runtime (a stack overflow) still ends the run, which AFL reports.
        Action<byte[]>? fuzzed = null;
        Fuzzer.Run(stream =>
        {
            fuzzed ??= Targets.All[args[1]];
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            try
            {
                fuzzed(buffer.ToArray());
            }
            catch (Exception e)
            {
                // afl-fuzz shows the target's stderr with AFL_DEBUG=1: the finding's exception, for triage.
                Console.Error.WriteLine(e);
                throw;
            }
        });
        return 0;

    case "replay":
        var target = Targets.All[args[1]];
        var failures = 0;
        foreach (var path in args.Skip(2).SelectMany<string, string>(p => Directory.Exists(p) ? Directory.EnumerateFiles(p).Order(StringComparer.Ordinal) : [p]))
        {
            var watch = Stopwatch.StartNew();
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target(File.ReadAllBytes(path));
                Console.WriteLine($"ok      {watch.ElapsedMilliseconds,6} ms {(GC.GetAllocatedBytesForCurrentThread() - allocated) / 1024,8} KiB  {path}");
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"FINDING {watch.ElapsedMilliseconds,6} ms  {path}\n{e}");
            }
        }

        return failures == 0 ? 0 : 1;

    case "seed" when args.Length == 3:
        Directory.CreateDirectory(args[2]);
        foreach (var (name, bytes) in Seeds.Generate(args[1]))
        {
            File.WriteAllBytes(Path.Combine(args[2], name), bytes);
        }

        return 0;

    default:
        Console.Error.WriteLine($"unknown command '{args[0]}'");
        return 2;
}
