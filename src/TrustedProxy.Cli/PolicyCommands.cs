using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using TrustedProxy.Client;
using TrustedProxy.Deidentification;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Cli;

/// <summary>
/// Policy files for the people who write and check them: <c>validate</c> reads a directory offline
/// as the server would (one line per outcome); <c>test</c> decides a request without performing it,
/// against a directory offline or against the proxy's policy in force (what-if, compliance role).
/// </summary>
internal static class PolicyCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create()
    {
        var policy = new Command("policy", "Check policy files and try requests against them (docs/policy.md)");
        policy.Subcommands.Add(Validate());
        policy.Subcommands.Add(Test());
        return policy;
    }

    private static Command Validate()
    {
        var directory = new Argument<string>("directory") { Description = "The policy directory", DefaultValueFactory = _ => Path.Combine("config", "policies") };
        var config = new Option<string?>("--config") { Description = "Configuration file whose de-identification profiles and policy limits apply (default: config/appsettings.json when present)" };
        var command = new Command("validate", "Check a directory of policy files as the proxy would load it; one line: ok, or the first problem at file:line:column") { directory, config };
        Cli.SetAction(command, (parse, _) =>
        {
            var (options, profiles) = ReadConfiguration(parse.GetValue(config));
            var set = Load(parse.GetValue(directory)!, options, profiles);
            Console.WriteLine($"ok: {set.Files.Count} files, {set.RuleCount} rules, {set.ConsentCount} consent entries, version {PolicyStore.Short(set.Version)}");
            return Task.FromResult(Cli.Ok);
        });
        return command;
    }

    private static Command Test()
    {
        var organisation = new Option<string>("--org") { Description = "The caller's organisation", Required = true };
        var role = new Option<string>("--role") { Description = "The caller's role: producer, consumer, compliance or admin", Required = true };
        var action = new Option<string>("--action") { Description = $"The action: {string.Join(", ", ProxyActions.Names)}", Required = true };
        var at = new Option<string?>("--at") { Description = "When (ISO 8601, e.g. 2025-03-12T10:00:00Z); now by default" };
        var justification = new Option<string?>("--justification") { Description = "A break-glass justification" };
        var deidentified = new Option<bool>("--deidentified") { Description = "The caller asks for the de-identified view" };
        var profile = new Option<string?>("--profile") { Description = "The de-identification profile the caller asks for" };
        var record = new Option<string?>("--record") { Description = "A stored record by handle (against the proxy only)" };
        var origin = new Option<string?>("--origin") { Description = "The record's origin organisation (a record given by its attributes)" };
        var patient = new Option<string?>("--patient") { Description = "The record's patient pseudonym" };
        var modality = new Option<string?>("--modality") { Description = "The record's modality" };
        var studyDate = new Option<string?>("--study-date") { Description = "The record's study date (yyyy-MM-dd)" };
        var policies = new Option<string?>("--policies") { Description = "Decide offline against this policy directory instead of asking the proxy" };
        var json = new Option<bool>("--json") { Description = "Print the whole answer as JSON" };
        var expect = new Option<string?>("--expect") { Description = "permit or deny: exit 1 when the decision differs (for checking policy changes in scripts)" };
        var command = new Command("test", "Decide a request without performing it: offline against --policies, or against the proxy's policy in force (what-if; compliance role)")
        {
            organisation, role, action, at, justification, deidentified, profile, record, origin, patient, modality, studyDate, policies, json, expect,
        };
        Cli.AddClientOptions(command);
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var expected = parse.GetValue(expect);
            if (expected is not (null or "permit" or "deny"))
            {
                throw new CliException("--expect is permit or deny", isUsage: true);
            }

            DateOnly? date = null;
            if (parse.GetValue(studyDate) is { } dateText)
            {
                date = DateOnly.TryParseExact(dateText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed)
                    ? parsed
                    : throw new CliException("--study-date is a date as yyyy-MM-dd", isUsage: true);
            }

            DateTimeOffset? when = null;
            if (parse.GetValue(at) is { } atText)
            {
                when = DateTimeOffset.TryParse(atText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                    ? parsed
                    : throw new CliException("--at is a time as ISO 8601, e.g. 2025-03-12T10:00:00Z", isUsage: true);
            }

            WhatIfRecord? subjectRecord = parse.GetValue(record) is { } handle
                ? new WhatIfRecord(Handle: handle)
                : (parse.GetValue(origin) ?? parse.GetValue(patient) ?? parse.GetValue(modality)) is not null || date is not null
                    ? new WhatIfRecord(null, parse.GetValue(origin), parse.GetValue(patient), parse.GetValue(modality), date)
                    : null;
            var request = new WhatIfRequest(
                parse.GetValue(organisation)!, parse.GetValue(role)!, parse.GetValue(action)!, parse.GetValue(Cli.Purpose), when,
                parse.GetValue(justification), parse.GetValue(deidentified), parse.GetValue(profile), subjectRecord);

            WhatIfResult result;
            if (parse.GetValue(policies) is { } directory)
            {
                var (options, _) = ReadConfiguration(null);
                var set = Load(directory, options, null);
                if (!WhatIf.TryCreate(request, null, DateTimeOffset.UtcNow, out var question, out var error))
                {
                    throw new CliException(error!, isUsage: true);
                }

                result = WhatIf.ToResult(PolicyEvaluator.Evaluate(set, question!));
            }
            else
            {
                using var client = Cli.CreateClient(parse, ProxyRole.Compliance);

                // --purpose is the evaluated request's purpose, not this call's.
                client.PurposeOfUse = null;
                result = await client.WhatIfAsync(request, cancellationToken);
            }

            Print(result, parse.GetValue(json));
            if (expected is not null && expected != (result.Permitted ? "permit" : "deny"))
            {
                throw new CliException($"expected {expected}, the policy says {(result.Permitted ? "permit" : "deny")} by {result.Rule}");
            }

            return Cli.Ok;
        });
        return command;
    }

    private static void Print(WhatIfResult result, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(result, Json));
            return;
        }

        Console.WriteLine(result.Reason);
        foreach (var rule in result.Matched)
        {
            Console.WriteLine($"  matched {rule.Rule} ({rule.Effect}, {rule.Status}{(rule.Detail is null ? "" : $": {rule.Detail}")}) at {rule.Source}");
        }

        if (result.Obligations is { } o)
        {
            Console.WriteLine($"  obligations: view {o.View}{(o.Profile is null ? "" : $" ({o.Profile})")}, {(o.Fingerprint ? "fingerprinted" : "unmarked")}, oblivious sets of at least {o.MinObliviousSet}");
        }

        foreach (var note in result.Notes)
        {
            Console.WriteLine($"  note: {note}");
        }

        Console.WriteLine($"  policy version {PolicyStore.Short(result.PolicyVersion)}{(result.BreakGlass ? "; BREAK-GLASS" : "")}");
    }

    private static PolicySet Load(string directory, PolicyOptions options, IReadOnlySet<string>? profiles)
    {
        try
        {
            return PolicyLoader.LoadDirectory(directory, options, profiles);
        }
        catch (PolicyLoadException invalid)
        {
            throw new CliException(invalid.Message);
        }
    }

    // The policy limits and profile names of a configuration file, as the server would bind them.
    private static (PolicyOptions Options, IReadOnlySet<string>? Profiles) ReadConfiguration(string? file)
    {
        file ??= File.Exists(Path.Combine("config", "appsettings.json")) ? Path.Combine("config", "appsettings.json") : null;
        if (file is null)
        {
            return (new PolicyOptions(), null);
        }

        if (!File.Exists(file))
        {
            throw new CliException($"configuration file '{file}' does not exist");
        }

        var configuration = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(file), optional: false).Build();
        var options = configuration.GetSection("TrustedProxy:Policy").Get<PolicyOptions>() ?? new PolicyOptions();
        var deidentification = configuration.GetSection("TrustedProxy:Deidentification").Get<DeidentificationSettings>() ?? new DeidentificationSettings();
        var profiles = deidentification.Profiles.Select(p => p.Name).Append(new DeidentificationProfile().Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return (options, profiles);
    }
}
