using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.Cli;

internal static class RecordCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private static readonly Option<bool> Deidentified = new("--deidentified") { Description = "Ask for the de-identified view (PS3.15); research purpose gets it anyway" };

    public static Command Upload()
    {
        var paths = new Argument<string[]>("paths") { Description = "DICOM files, or folders to upload every file in (recursively)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("upload", "Upload DICOM files as a producer; prints one handle per file") { paths };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var files = Expand(parse.GetValue(paths)!);
            if (files.Count == 0)
            {
                throw new CliException("no files to upload", isUsage: true);
            }

            using var client = Cli.CreateClient(parse, ProxyRole.Producer);
            var failures = 0;
            var results = new List<(string Path, string Outcome)>();
            async Task UploadAll(Action<long>? advance)
            {
                foreach (var file in files)
                {
                    long reported = 0;
                    var progress = advance is null ? null : new Progress<long>(total => { advance(total - reported); reported = total; });
                    try
                    {
                        var result = await client.UploadFileAsync(file, progress, cancellationToken);
                        results.Add((file, result.Handle));
                    }
                    catch (TrustedProxyException ex)
                    {
                        failures++;
                        results.Add((file, $"refused: {ex.Detail}"));
                    }
                }
            }

            var totalBytes = files.Sum(f => new FileInfo(f).Length);
            if (AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected)
            {
                await AnsiConsole.Progress().AutoClear(true).StartAsync(async context =>
                {
                    var task = context.AddTask($"uploading {files.Count} file(s)", maxValue: Math.Max(1, totalBytes));
                    await UploadAll(delta => task.Increment(delta));
                });
            }
            else
            {
                await UploadAll(null);
            }

            foreach (var (path, outcome) in results)
            {
                Console.WriteLine($"{outcome}\t{path}");
            }

            if (failures > 0)
            {
                Console.Error.WriteLine($"tproxy: {failures} of {files.Count} file(s) refused");
                return Cli.Failed;
            }

            return Cli.Ok;
        });
        return command;
    }

    public static Command Find()
    {
        var patient = new Option<string?>("--patient-id") { Description = "Patient ID as the hospital knows it (matched through the proxy's pseudonym)" };
        var study = new Option<string?>("--study") { Description = "Study Instance UID" };
        var modality = new Option<string?>("--modality") { Description = "Modality, e.g. CT" };
        var from = new Option<string?>("--from") { Description = "Earliest study date, yyyy-MM-dd" };
        var to = new Option<string?>("--to") { Description = "Latest study date, yyyy-MM-dd" };
        var limit = new Option<int?>("--limit") { Description = "Most results" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var command = new Command("find", "Search the records you may see") { patient, study, modality, from, to, limit, json, Deidentified };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var client = Cli.CreateClient(parse, ProxyRole.Consumer);
            var page = await client.SearchAsync(
                new RecordSearch
                {
                    PatientId = parse.GetValue(patient),
                    StudyInstanceUid = parse.GetValue(study),
                    Modality = parse.GetValue(modality),
                    From = ParseDate(parse.GetValue(from), "--from"),
                    To = ParseDate(parse.GetValue(to), "--to"),
                    Limit = parse.GetValue(limit),
                    Deidentified = parse.GetValue(Deidentified),
                },
                cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(page.Items, Json));
                return Cli.Ok;
            }

            var table = new Table().AddColumns(new TableColumn("handle").NoWrap(), new TableColumn("modality"), new TableColumn("study date").NoWrap(), new TableColumn("study UID"), new TableColumn("bytes"), new TableColumn("from"));
            foreach (var r in page.Items)
            {
                table.AddRow(r.Handle, r.Modality ?? "", r.StudyDate ?? "", Markup.Escape(r.StudyInstanceUid ?? ""), r.Length?.ToString(CultureInfo.InvariantCulture) ?? "", Markup.Escape(r.OriginOrganisation ?? ""));
            }

            AnsiConsole.Write(table);
            Console.WriteLine($"{page.Items.Count} record(s)");
            return Cli.Ok;
        });
        return command;
    }

    public static Command Fetch()
    {
        var handle = new Argument<string>("handle") { Description = "The record's handle (with --among: the handles to take, comma-separated)" };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the file (default: <handle>.dcm; - for standard output; a directory when several are taken)" };
        var among = new Option<string?>("--among") { Description = "Oblivious transfer: the set of handles (comma-separated) to take the chosen ones from; the proxy sends all and never learns which were taken" };
        var command = new Command("fetch", "Fetch a record's DICOM file, checked against the proxy's digest") { handle, output, Deidentified, among };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var client = Cli.CreateClient(parse, ProxyRole.Consumer);
            var name = parse.GetValue(handle)!;
            if (parse.GetValue(among) is { } set)
            {
                return await FetchObliviousAsync(client, set.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), name.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(output), parse.GetValue(Deidentified), cancellationToken);
            }

            var target = parse.GetValue(output) ?? name + ".dcm";
            if (target == "-")
            {
                await using var stdout = Console.OpenStandardOutput();
                await client.FetchAsync(name, stdout, deidentified: parse.GetValue(Deidentified), cancellationToken: cancellationToken);
                return Cli.Ok;
            }

            var temporary = target + ".partial";
            try
            {
                long length;
                await using (var file = File.Create(temporary))
                {
                    length = await client.FetchAsync(name, file, deidentified: parse.GetValue(Deidentified), cancellationToken: cancellationToken);
                }

                File.Move(temporary, target, overwrite: true);
                Console.WriteLine($"{target}\t{length} bytes");
                return Cli.Ok;
            }
            finally
            {
                File.Delete(temporary);
            }
        });
        return command;
    }

    private static async Task<int> FetchObliviousAsync(TrustedProxyClient client, string[] set, string[] chosen, string? output, bool deidentified, CancellationToken cancellationToken)
    {
        if (chosen.Any(c => !set.Contains(c)))
        {
            throw new CliException("every handle to take must be one of --among");
        }

        var files = await client.FetchObliviousAsync(set, chosen, deidentified, cancellationToken);
        for (var i = 0; i < chosen.Length; i++)
        {
            var target = chosen.Length == 1 && output is not null ? output : Path.Combine(output ?? ".", chosen[i] + ".dcm");
            await File.WriteAllBytesAsync(target, files[i], cancellationToken);
            Console.WriteLine($"{target}\t{files[i].Length} bytes\t(oblivious transfer: {chosen.Length} of {set.Length})");
        }

        return Cli.Ok;
    }

    public static Command Trace()
    {
        var path = new Argument<string>("file") { Description = "A copy found outside: a DICOM file, or a PNG of one frame's stored values" };
        var json = new Option<bool>("--json") { Description = "Print the proxy's whole answer as JSON" };
        var command = new Command("trace", "Trace a leaked copy to the consumer and request it was handed out under (compliance officers)") { path, json };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var file = parse.GetValue(path)!;
            if (!File.Exists(file))
            {
                throw new CliException($"'{file}' is not a file", isUsage: true);
            }

            using var client = Cli.CreateClient(parse, ProxyRole.Compliance);
            var report = await client.TraceFileAsync(file, cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, Json));
                return Cli.Ok;
            }

            Console.WriteLine(report.Status switch
            {
                "fingerprinted" => $"{file}	fingerprinted	to {report.ConsumerOrganisation ?? "(unknown consumer)"}	certificate {report.CertificateSerial ?? "-"}	request {report.RequestId ?? "-"}	at {report.MarkedAt:O}	{report.RequestResource ?? "-"}",
                "sealed" => $"{file}	sealed original	record {report.RecordHandle}	from {report.OriginOrganisation ?? "-"}	at {report.MarkedAt:O}",
                _ => $"{file}	no valid mark	{report.Detail}",
            });
            return report.Status == "no-valid-mark" ? Cli.Failed : Cli.Ok;
        });
        return command;
    }

    public static Command Delete()
    {
        var handle = new Argument<string>("handle") { Description = "The record's handle" };
        var command = new Command("delete", "Delete a record from the proxy and the cloud (administrators)") { handle };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var client = Cli.CreateClient(parse, ProxyRole.Admin);
            await client.DeleteAsync(parse.GetValue(handle)!, cancellationToken);
            Console.WriteLine("deleted");
            return Cli.Ok;
        });
        return command;
    }

    /// <summary>Maintenance of the stored records (administrators): <c>tproxy records migrate-format</c>.</summary>
    public static Command Records() => new("records", "Maintain the stored records (administrators)") { MigrateFormat() };

    private static Command MigrateFormat()
    {
        var status = new Option<bool>("--status") { Description = "Only show the progress; start nothing" };
        var wait = new Option<bool>("--wait") { Description = "Follow the run until it ends (exit 1 if a record could not be moved)" };
        var command = new Command("migrate-format", "Move every record stored before the object mask (index v7) to masked objects, through the read and upload schedules, at the configured pace") { status, wait };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var client = Cli.CreateClient(parse, ProxyRole.Admin);
            var progress = parse.GetValue(status)
                ? await client.ObjectFormatMigrationAsync(cancellationToken)
                : await client.StartObjectFormatMigrationAsync(cancellationToken);
            Console.WriteLine(Describe(progress));
            if (!parse.GetValue(wait))
            {
                return Cli.Ok;
            }

            while (progress.Running)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                var next = await client.ObjectFormatMigrationAsync(cancellationToken);
                if (next != progress)
                {
                    Console.WriteLine(Describe(next));
                }

                progress = next;
            }

            if (progress.Failed > 0)
            {
                Console.Error.WriteLine($"tproxy: {progress.Failed} record(s) could not be moved (the proxy's log says why); run the command again to retry them");
                return Cli.Failed;
            }

            return Cli.Ok;
        });
        return command;
    }

    private static string Describe(ObjectFormatMigrationProgress p) => p switch
    {
        { Running: false, LegacyRecords: 0 } => $"nothing to migrate: every record is stored masked{(p.Migrated > 0 ? $" ({p.Migrated} moved in the last run)" : "")}",
        { Running: true } => $"migrating: {p.LegacyRecords} legacy record(s) left, {p.Migrated} moved and {p.Failed} failed in this run, at most {p.RecordsPerHour.ToString(CultureInfo.InvariantCulture)} an hour",
        _ => $"not running: {p.LegacyRecords} legacy record(s) left ({p.Migrated} moved, {p.Failed} failed in the last run)",
    };

    public static Command WhoAmI()
    {
        var command = new Command("whoami", "Show the organisation and role the proxy reads from your certificate");
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var client = Cli.CreateClient(parse, ProxyRole.Consumer);
            var me = await client.WhoAmIAsync(cancellationToken);
            Console.WriteLine($"{me.Organisation}\t{me.Role}\t{me.CertificateSerial}");
            return Cli.Ok;
        });
        return command;
    }

    private static List<string> Expand(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var path in paths)
        {
            if (File.Exists(path))
            {
                files.Add(path);
            }
            else if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
            }
            else
            {
                throw new CliException($"'{path}' is neither a file nor a folder", isUsage: true);
            }
        }

        return files;
    }

    private static DateOnly? ParseDate(string? value, string option) =>
        value is null ? null
        : DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date
        : throw new CliException($"{option} must be a date as yyyy-MM-dd", isUsage: true);
}
