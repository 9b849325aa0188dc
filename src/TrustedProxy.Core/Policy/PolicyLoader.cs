using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace TrustedProxy.Policy;

/// <summary>One thing wrong with a policy set, where it is: file, line and column (1-based; 0 when it is about the whole file or directory).</summary>
public sealed record PolicyError(string File, int Line, int Column, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}

/// <summary>A policy set was refused; every problem found is listed, each at its place.</summary>
public sealed class PolicyLoadException(IReadOnlyList<PolicyError> errors)
    : Exception(errors.Count == 1 ? errors[0].ToString() : $"{errors[0]} (and {errors.Count - 1} more)")
{
    public IReadOnlyList<PolicyError> Errors { get; } = errors;
}

/// <summary>
/// Reads a directory of YAML policy files into a checked <see cref="PolicySet"/>, or refuses it
/// with every problem at its file:line:column. Only the keys and words of <see cref="PolicySchema"/>
/// are accepted; anchors, aliases and multi-document files are refused (a policy is read by people,
/// who should see each rule written out). Files are taken in ordinal name order.
/// </summary>
internal static partial class PolicyLoader
{
    public static readonly string[] Extensions = [".yaml", ".yml"];

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Whether a file name is one the loader reads.</summary>
    public static bool IsPolicyFile(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase) && !Path.GetFileName(path).StartsWith('.');

    /// <summary>Reads and checks every policy file of <paramref name="directory"/>.</summary>
    public static PolicySet LoadDirectory(string directory, PolicyOptions limits, IReadOnlySet<string>? knownProfiles = null) =>
        Load(ReadDirectory(directory, limits), knownProfiles);

    public static IReadOnlyList<PolicyFile> ReadDirectory(string directory, PolicyOptions limits)
    {
        if (!Directory.Exists(directory))
        {
            throw new PolicyLoadException([new PolicyError(directory, 0, 0, "the policy directory does not exist")]);
        }

        var paths = Directory.EnumerateFiles(directory).Where(IsPolicyFile).Order(StringComparer.Ordinal).ToList();
        var errors = new List<PolicyError>();
        if (paths.Count == 0)
        {
            errors.Add(new PolicyError(directory, 0, 0, "the policy directory holds no *.yaml or *.yml file; without rules every request would be denied"));
        }
        else if (paths.Count > limits.MaxFiles)
        {
            errors.Add(new PolicyError(directory, 0, 0, $"the policy directory holds {paths.Count} files, more than the {limits.MaxFiles} of TrustedProxy:Policy:MaxFiles"));
        }

        var files = new List<PolicyFile>();
        foreach (var path in errors.Count == 0 ? paths : [])
        {
            if (Decode(Path.GetFileName(path), File.ReadAllBytes(path), limits, errors) is { } file)
            {
                files.Add(file);
            }
        }

        return errors.Count > 0 ? throw new PolicyLoadException(errors) : files;
    }

    /// <summary>A policy file's bytes as text, or null with the reason added to <paramref name="errors"/> (over the size limit, not UTF-8).</summary>
    public static PolicyFile? Decode(string name, byte[] bytes, PolicyOptions limits, List<PolicyError> errors)
    {
        if (bytes.Length > limits.MaxFileBytes)
        {
            errors.Add(new PolicyError(name, 0, 0, $"the file is {bytes.Length} bytes, more than the {limits.MaxFileBytes} of TrustedProxy:Policy:MaxFileBytes"));
            return null;
        }

        try
        {
            return new PolicyFile(name, StrictUtf8.GetString(bytes));
        }
        catch (DecoderFallbackException)
        {
            errors.Add(new PolicyError(name, 0, 0, "the file is not UTF-8 text"));
            return null;
        }
    }

    /// <summary>Checks and compiles a set of files (already in order); with <paramref name="knownProfiles"/>, profile names are checked too.</summary>
    public static PolicySet Load(IReadOnlyList<PolicyFile> files, IReadOnlySet<string>? knownProfiles = null)
    {
        var errors = new List<PolicyError>();
        var entries = new List<ParsedRule>();
        foreach (var file in files)
        {
            var reader = new FileReader(file.Name, errors, knownProfiles);
            reader.Read(file.Content);
            entries.AddRange(reader.Rules);
        }

        var byId = new Dictionary<string, ParsedRule>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!byId.TryAdd(entry.Rule.Id, entry))
            {
                errors.Add(entry.At(entry.IdMark, $"id '{entry.Rule.Id}' is already used at {byId[entry.Rule.Id].Rule.Source}; ids name one rule or consent entry each"));
            }
        }

        foreach (var entry in entries)
        {
            foreach (var (target, mark) in entry.OverrideMarks)
            {
                if (!byId.TryGetValue(target, out var overridden))
                {
                    errors.Add(entry.At(mark, $"overrides '{target}', which no rule or consent entry is called"));
                }
                else if (overridden.Rule.Effect != RuleEffect.Deny)
                {
                    errors.Add(entry.At(mark, $"overrides '{target}', which is not a deny (only denies can be overridden)"));
                }
            }
        }

        if (errors.Count == 0 && entries.Count == 0)
        {
            errors.Add(new PolicyError(files.Count > 0 ? files[0].Name : "(no files)", 0, 0, "the policy set holds no rules; every request would be denied"));
        }

        if (errors.Count > 0)
        {
            throw new PolicyLoadException(errors);
        }

        return new PolicySet(files, entries.Select(e => e.Rule).ToList());
    }

    private sealed record ParsedRule(PolicyRule Rule, string File, Mark IdMark, IReadOnlyList<(string Target, Mark Mark)> OverrideMarks)
    {
        public PolicyError At(Mark mark, string message) => new(File, (int)mark.Line, (int)mark.Column, message);
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,79}$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex PseudonymPattern();

    /// <summary>Reads one file, adding what is wrong with it to the shared list.</summary>
    private sealed class FileReader(string file, List<PolicyError> errors, IReadOnlySet<string>? knownProfiles)
    {
        private static readonly HashSet<ProxyAction> ReadActions = [ProxyAction.Search, ProxyAction.Retrieve, ProxyAction.RetrieveOblivious, ProxyAction.Export];

        public List<ParsedRule> Rules { get; } = [];

        public void Read(string content)
        {
            var stream = new YamlStream();
            try
            {
                stream.Load(new StringReader(content));
            }
            catch (YamlException ex)
            {
                Error(ex.Start, $"not valid YAML: {YamlMessage(ex)}");
                return;
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                // YamlDotNet 18.1 throws these instead of a YamlException on some malformed text (a
                // plain scalar cut by a stray CR, a tab-indented block entry, a document end followed
                // by a NUL, a tag that is no URI; found by fuzzing, docs/fuzzing.md). They carry no
                // position, but the file is refused like any other invalid YAML.
                errors.Add(new PolicyError(file, 0, 0, $"not valid YAML: the parser stopped on malformed text ({ex.Message})"));
                return;
            }

            if (stream.Documents.Count != 1)
            {
                errors.Add(new PolicyError(file, stream.Documents.Count == 0 ? 0 : (int)stream.Documents[1].RootNode.Start.Line, 0,
                    stream.Documents.Count == 0 ? "the file is empty; a policy file has at least 'version: 1'" : "a policy file holds one YAML document"));
                return;
            }

            var root = stream.Documents[0].RootNode;
            if (FindAnchor(root) is { } anchored)
            {
                Error(anchored, "anchors and aliases are not accepted: write each rule out");
                return;
            }

            if (Mapping(root, "a policy file is a mapping with 'version', and 'rules' and/or 'consent'") is not { } map)
            {
                return;
            }

            var fields = Fields(map, PolicySchema.File);
            if (!fields.TryGetValue("version", out var version))
            {
                Error(map, $"'version' is missing: the format version, {PolicySchema.FormatVersion}");
            }
            else if (Integer(version, "version", 0, int.MaxValue) is { } number && number != PolicySchema.FormatVersion)
            {
                Error(version, $"version {number} is not the format this proxy reads ({PolicySchema.FormatVersion})");
            }

            if (fields.TryGetValue("description", out var description))
            {
                Text(description, "description");
            }

            if (fields.TryGetValue("rules", out var rules) && Sequence(rules, "rules") is { } ruleList)
            {
                foreach (var rule in ruleList)
                {
                    ReadRule(rule);
                }
            }

            if (fields.TryGetValue("consent", out var consent) && Sequence(consent, "consent") is { } consentList)
            {
                foreach (var entry in consentList)
                {
                    ReadConsent(entry);
                }
            }
        }

        private void ReadRule(YamlNode node)
        {
            if (Mapping(node, "a rule is a mapping with at least 'id' and 'effect'") is not { } map)
            {
                return;
            }

            var before = errors.Count;
            var fields = Fields(map, PolicySchema.Rule);
            var id = Id(fields, map);
            RuleEffect? effect = null;
            if (!fields.TryGetValue("effect", out var effectNode))
            {
                Error(map, "'effect' is missing: permit, deny or oblige");
            }
            else if (Word(effectNode, "effect", PolicySchema.Effects) is { } effectName)
            {
                effect = (RuleEffect)PolicySchema.Effects.ToList().IndexOf(effectName);
            }

            if (fields.TryGetValue("description", out var description))
            {
                Text(description, "description");
            }

            var when = Condition(fields);
            Condition? unless = null;
            if (fields.TryGetValue("unless", out var unlessNode) && Mapping(unlessNode, "'unless' is a mapping of conditions") is { } unlessMap)
            {
                var unlessFields = Fields(unlessMap, PolicySchema.Condition);
                if (unlessFields.Count == 0)
                {
                    Error(unlessMap, "'unless' names no condition");
                }

                unless = Condition(unlessFields);
            }

            var obligations = fields.TryGetValue("obligations", out var obligationsNode) ? Obligations(obligationsNode) : null;
            var breakGlass = fields.TryGetValue("breakGlass", out var breakGlassNode) && Boolean(breakGlassNode, "breakGlass") == true;
            var overridesConsent = fields.TryGetValue("overridesConsent", out var overridesConsentNode) && Boolean(overridesConsentNode, "overridesConsent") == true;
            var overrides = fields.TryGetValue("overrides", out var overridesNode) ? List(overridesNode, "overrides") ?? [] : [];
            foreach (var (target, targetNode) in overrides)
            {
                if (!IdPattern().IsMatch(target))
                {
                    Error(targetNode, $"'{target}' is not a rule id");
                }
            }

            if (effect is not { } known)
            {
                return;
            }

            if (known == RuleEffect.Deny && obligationsNode is not null)
            {
                Error(obligationsNode, "a deny carries no obligations: there is nothing to carry out");
            }

            if (known == RuleEffect.Oblige && obligations is null && obligationsNode is null)
            {
                Error(map, "an oblige rule needs 'obligations': that is all it does");
            }

            if (known != RuleEffect.Permit)
            {
                foreach (var (key, what) in new[] { ("breakGlass", "breakGlass"), ("overrides", "overrides"), ("overridesConsent", "overridesConsent") })
                {
                    if (fields.TryGetValue(key, out var misplaced))
                    {
                        Error(misplaced, $"only a permit may say '{what}'");
                    }
                }
            }

            if (errors.Count > before || id is null)
            {
                return;
            }

            Rules.Add(new ParsedRule(
                new PolicyRule(id.Value.Id, RuleKind.Rule, known, Source(map), description is null ? null : Text(description, "description"), when, unless, obligations,
                    breakGlass, overrides.Select(o => o.Value).ToList(), overridesConsent),
                file, id.Value.Node.Start, overrides.Select(o => (o.Value, o.Node.Start)).ToList()));
        }

        private void ReadConsent(YamlNode node)
        {
            if (Mapping(node, "a consent entry is a mapping with 'id' and 'patient'") is not { } map)
            {
                return;
            }

            var before = errors.Count;
            var fields = Fields(map, PolicySchema.Consent);
            var id = Id(fields, map);
            string? patient = null;
            if (!fields.TryGetValue("patient", out var patientNode))
            {
                Error(map, "'patient' is missing: the proxy's pseudonym of the patient, as search results show it");
            }
            else if (Text(patientNode, "patient") is { } value)
            {
                // The value is never echoed: someone may have typed a real Patient ID here.
                if (PseudonymPattern().IsMatch(value))
                {
                    patient = value;
                }
                else
                {
                    Error(patientNode, "patient must be the proxy's pseudonym of the patient (32 lowercase hexadecimal digits, as search results show it), never a Patient ID");
                }
            }

            string? description = fields.TryGetValue("description", out var descriptionNode) ? Text(descriptionNode, "description") : null;
            if (fields.TryGetValue("recorded", out var recorded))
            {
                Date(recorded, "recorded");
            }

            IReadOnlySet<string>? organisations = null;
            IReadOnlySet<PurposeOfUse>? purposes = null;
            if (fields.TryGetValue("withheldFrom", out var withheldNode) && Mapping(withheldNode, "'withheldFrom' is a mapping with 'organisations' and/or 'purposes'") is { } withheld)
            {
                var withheldFields = Fields(withheld, PolicySchema.WithheldFrom);
                if (withheldFields.Count == 0)
                {
                    Error(withheld, "'withheldFrom' names neither organisations nor purposes; leave it out to withhold from everyone");
                }

                organisations = withheldFields.TryGetValue("organisations", out var orgs) ? Organisations(orgs, "organisations") : null;
                purposes = withheldFields.TryGetValue("purposes", out var p) ? Words(p, "purposes", PurposesOfUse.Names, n => PurposesOfUse.TryParse(n, out var x) ? x : default) : null;
            }

            if (errors.Count > before || id is null || patient is null)
            {
                return;
            }

            // Consent binds what the federation shares: the hospital that uploaded the record keeps it.
            var when = new Condition(null, organisations, ReadActions, purposes, null, new RecordCondition(new OriginCondition(OriginKind.Other, new HashSet<string>()), null, null, patient));
            Rules.Add(new ParsedRule(
                new PolicyRule(id.Value.Id, RuleKind.Consent, RuleEffect.Deny, Source(map), description, when, null, null, false, [], false),
                file, id.Value.Node.Start, []));
        }

        private Condition Condition(IReadOnlyDictionary<string, YamlNode> fields)
        {
            IReadOnlySet<ProxyRole>? roles = fields.TryGetValue("roles", out var r) ? Words(r, "roles", ProxyRoles.Names, n => ProxyRoles.TryParse(n, out var x) ? x : default) : null;
            IReadOnlySet<string>? organisations = fields.TryGetValue("organisations", out var o) ? Organisations(o, "organisations") : null;
            IReadOnlySet<ProxyAction>? actions = fields.TryGetValue("actions", out var a) ? Words(a, "actions", ProxyActions.Names, n => ProxyActions.TryParse(n, out var x) ? x : default) : null;
            IReadOnlySet<PurposeOfUse>? purposes = fields.TryGetValue("purposes", out var p) ? Words(p, "purposes", PurposesOfUse.Names, n => PurposesOfUse.TryParse(n, out var x) ? x : default) : null;
            var time = fields.TryGetValue("time", out var t) ? Time(t) : null;
            var record = fields.TryGetValue("record", out var rec) ? Record(rec) : null;
            return new Condition(roles, organisations, actions, purposes, time, record);
        }

        private TimeWindow? Time(YamlNode node)
        {
            if (Mapping(node, "'time' is a mapping with 'days', 'from', 'to' and 'timezone'") is not { } map)
            {
                return null;
            }

            var fields = Fields(map, PolicySchema.Time);
            var days = fields.TryGetValue("days", out var d) ? Words(d, "days", PolicySchema.Days, PolicySchema.ToDayOfWeek) : null;
            var from = fields.TryGetValue("from", out var f) ? Clock(f, "from") : null;
            var to = fields.TryGetValue("to", out var t) ? Clock(t, "to") : null;
            if ((f is null) != (t is null))
            {
                Error(map, "a time window names both 'from' and 'to' (HH:mm), or neither");
            }
            else if (from is not null && from == to)
            {
                Error(f!, "'from' and 'to' are the same time: the window would be empty");
            }

            if (d is null && f is null)
            {
                Error(map, "a time window names 'days', or 'from' and 'to', or both");
            }

            var zone = TimeZoneInfo.Utc;
            if (fields.TryGetValue("timezone", out var z) && Text(z, "timezone") is { } zoneId)
            {
                if (!TimeZoneInfo.TryFindSystemTimeZoneById(zoneId, out var found))
                {
                    Error(z, $"time zone '{zoneId}' is not known here (use an IANA name such as Europe/Oslo, or UTC)");
                }
                else
                {
                    zone = found;
                }
            }

            return new TimeWindow(days, from, to, zone);
        }

        private RecordCondition? Record(YamlNode node)
        {
            if (Mapping(node, "'record' is a mapping with 'origin', 'modalities' and/or 'studyDate'") is not { } map)
            {
                return null;
            }

            var fields = Fields(map, PolicySchema.Record);
            if (fields.Count == 0)
            {
                Error(map, "'record' names no condition");
            }

            OriginCondition? origin = null;
            if (fields.TryGetValue("origin", out var o))
            {
                if (o is YamlScalarNode)
                {
                    origin = Word(o, "origin", PolicySchema.OriginWords) switch
                    {
                        "own" => new OriginCondition(OriginKind.Own, new HashSet<string>()),
                        "other" => new OriginCondition(OriginKind.Other, new HashSet<string>()),
                        _ => null,
                    };
                }
                else if (Organisations(o, "origin") is { } names)
                {
                    origin = new OriginCondition(OriginKind.Listed, names);
                }
            }

            IReadOnlySet<string>? modalities = null;
            if (fields.TryGetValue("modalities", out var m) && List(m, "modalities") is { } list)
            {
                foreach (var (value, valueNode) in list.Where(v => v.Value.Length > 16 || !v.Value.All(c => char.IsAsciiLetterOrDigit(c) || c == '_')))
                {
                    Error(valueNode, $"'{value}' is not a DICOM modality code (letters and digits, up to 16)");
                }

                modalities = list.Select(v => v.Value).ToHashSet(StringComparer.OrdinalIgnoreCase);
            }

            StudyDateCondition? studyDate = null;
            if (fields.TryGetValue("studyDate", out var s) && Mapping(s, "'studyDate' is a mapping with 'from', 'to', 'minAgeDays' and/or 'maxAgeDays'") is { } dateMap)
            {
                var dateFields = Fields(dateMap, PolicySchema.StudyDate);
                if (dateFields.Count == 0)
                {
                    Error(dateMap, "'studyDate' names no bound");
                }

                var from = dateFields.TryGetValue("from", out var df) ? Date(df, "from") : null;
                var to = dateFields.TryGetValue("to", out var dt) ? Date(dt, "to") : null;
                var minAge = dateFields.TryGetValue("minAgeDays", out var dmin) ? Integer(dmin, "minAgeDays", 0, 100_000) : null;
                var maxAge = dateFields.TryGetValue("maxAgeDays", out var dmax) ? Integer(dmax, "maxAgeDays", 0, 100_000) : null;
                if (from > to)
                {
                    Error(df!, "'from' is after 'to'");
                }

                if (minAge > maxAge)
                {
                    Error(dmin!, "'minAgeDays' is above 'maxAgeDays'");
                }

                studyDate = new StudyDateCondition(from, to, minAge, maxAge);
            }

            return new RecordCondition(origin, modalities, studyDate);
        }

        private RuleObligations? Obligations(YamlNode node)
        {
            if (Mapping(node, "'obligations' is a mapping with 'view', 'profile', 'fingerprint' and/or 'minObliviousSet'") is not { } map)
            {
                return null;
            }

            var fields = Fields(map, PolicySchema.Obligations);
            if (fields.Count == 0)
            {
                Error(map, "'obligations' names none");
            }

            RecordView? view = fields.TryGetValue("view", out var v) && Word(v, "view", PolicySchema.Views) is { } viewName
                ? viewName == "deidentified" ? RecordView.Deidentified : RecordView.Original
                : null;
            string? profile = null;
            if (fields.TryGetValue("profile", out var p) && Text(p, "profile") is { } profileName)
            {
                if (view != RecordView.Deidentified)
                {
                    Error(p, "a profile goes with 'view: deidentified'");
                }
                else if (knownProfiles is not null && !knownProfiles.Contains(profileName))
                {
                    Error(p, $"no de-identification profile is named '{profileName}' (TrustedProxy:Deidentification:Profiles has {string.Join(", ", knownProfiles.Order())})");
                }

                profile = profileName;
            }

            var fingerprint = fields.TryGetValue("fingerprint", out var f) ? Boolean(f, "fingerprint") : null;
            var minSet = fields.TryGetValue("minObliviousSet", out var n) ? Integer(n, "minObliviousSet", 1, 65_536) : null;
            return new RuleObligations(view, profile, fingerprint, minSet);
        }

        private (string Id, YamlNode Node)? Id(IReadOnlyDictionary<string, YamlNode> fields, YamlMappingNode map)
        {
            if (!fields.TryGetValue("id", out var node))
            {
                Error(map, "'id' is missing: every rule and consent entry has an id (lowercase letters, digits, '.', '_', '-')");
                return null;
            }

            if (Text(node, "id") is not { } id)
            {
                return null;
            }

            if (!IdPattern().IsMatch(id))
            {
                Error(node, $"id '{id}' is not lowercase letters, digits, '.', '_' and '-' (up to 80, starting with a letter or digit)");
                return null;
            }

            if (id == PolicyDecision.DefaultDeny)
            {
                Error(node, $"id '{id}' is reserved for denials no rule made");
                return null;
            }

            return (id, node);
        }

        private IReadOnlySet<string>? Organisations(YamlNode node, string what)
        {
            var list = List(node, what);
            return list?.Select(v => v.Value).ToHashSet(StringComparer.Ordinal);
        }

        private HashSet<T>? Words<T>(YamlNode node, string what, IReadOnlyList<string> allowed, Func<string, T> parse)
        {
            var list = List(node, what);
            if (list is null)
            {
                return null;
            }

            var bad = list.Where(v => !allowed.Contains(v.Value)).ToList();
            foreach (var (value, valueNode) in bad)
            {
                Error(valueNode, $"'{value}' is not one of the {what}: {string.Join(", ", allowed)}");
            }

            return bad.Count > 0 ? null : list.Select(v => parse(v.Value)).ToHashSet();
        }

        private List<(string Value, YamlNode Node)>? List(YamlNode node, string what)
        {
            if (node is not YamlSequenceNode sequence)
            {
                Error(node, $"'{what}' is a list, e.g. [a, b]");
                return null;
            }

            if (sequence.Children.Count == 0)
            {
                Error(node, $"'{what}' is empty, which would match nothing; leave it out to match anything");
                return null;
            }

            var values = new List<(string, YamlNode)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in sequence.Children)
            {
                if (Text(item, $"an entry of '{what}'") is not { } value)
                {
                    continue;
                }

                if (!seen.Add(value))
                {
                    Error(item, $"'{value}' is listed twice in '{what}'");
                    continue;
                }

                values.Add((value, item));
            }

            return values.Count == sequence.Children.Count ? values : null;
        }

        private IList<YamlNode>? Sequence(YamlNode node, string what)
        {
            if (node is YamlSequenceNode sequence)
            {
                return sequence.Children;
            }

            Error(node, $"'{what}' is a list of mappings (entries starting with '- ')");
            return null;
        }

        private YamlMappingNode? Mapping(YamlNode node, string expectation)
        {
            if (node is YamlMappingNode map)
            {
                return map;
            }

            Error(node, expectation);
            return null;
        }

        /// <summary>The mapping's values by key; an unknown or repeated key is an error (YAML refuses repeats already).</summary>
        private Dictionary<string, YamlNode> Fields(YamlMappingNode map, string kind)
        {
            var allowed = PolicySchema.Keys[kind];
            var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (keyNode, value) in map.Children)
            {
                if (keyNode is not YamlScalarNode { Value: { } key })
                {
                    Error(keyNode, "a key is a plain word");
                    continue;
                }

                if (!allowed.Contains(key))
                {
                    Error(keyNode, $"unknown key '{key}' in {Describe(kind)}; expected one of: {string.Join(", ", allowed)}");
                    continue;
                }

                fields[key] = value;
            }

            return fields;
        }

        private static string Describe(string kind) => kind switch
        {
            PolicySchema.File => "a policy file",
            PolicySchema.Rule => "a rule",
            PolicySchema.Condition => "'unless'",
            PolicySchema.Consent => "a consent entry",
            _ => $"'{kind}'",
        };

        private string? Text(YamlNode node, string what)
        {
            if (node is YamlScalarNode { Value: { Length: > 0 } value } && !string.IsNullOrWhiteSpace(value))
            {
                return value.Trim();
            }

            Error(node, $"{(what.StartsWith("an entry", StringComparison.Ordinal) ? what : $"'{what}'")} must be a non-empty text value");
            return null;
        }

        private string? Word(YamlNode node, string what, IReadOnlyList<string> allowed)
        {
            if (Text(node, what) is not { } value)
            {
                return null;
            }

            if (allowed.Contains(value))
            {
                return value;
            }

            Error(node, $"'{value}' is not a valid {what}: {string.Join(", ", allowed)}");
            return null;
        }

        private bool? Boolean(YamlNode node, string what)
        {
            switch (Text(node, what))
            {
                case "true": return true;
                case "false": return false;
                case null: return null;
                default:
                    Error(node, $"'{what}' is true or false");
                    return null;
            }
        }

        private int? Integer(YamlNode node, string what, int min, int max)
        {
            if (Text(node, what) is not { } value)
            {
                return null;
            }

            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
            {
                return number;
            }

            Error(node, $"'{what}' is a whole number from {min} to {max}");
            return null;
        }

        private DateOnly? Date(YamlNode node, string what)
        {
            if (Text(node, what) is not { } value)
            {
                return null;
            }

            if (DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
            {
                return date;
            }

            Error(node, $"'{what}' is a date as yyyy-MM-dd");
            return null;
        }

        private TimeOnly? Clock(YamlNode node, string what)
        {
            if (Text(node, what) is not { } value)
            {
                return null;
            }

            if (TimeOnly.TryParseExact(value, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
            {
                return time;
            }

            Error(node, $"'{what}' is a time of day as HH:mm (24-hour)");
            return null;
        }

        private string Source(YamlNode node) => $"{file}:{node.Start.Line}";

        private void Error(YamlNode node, string message) => Error(node.Start, message);

        private void Error(Mark mark, string message) => errors.Add(new PolicyError(file, (int)mark.Line, (int)mark.Column, message));

        private static YamlNode? FindAnchor(YamlNode node)
        {
            // Aliases resolve to the anchored node itself, so an anchor is all there is to find.
            if (!node.Anchor.IsEmpty)
            {
                return node;
            }

            var children = node switch
            {
                YamlMappingNode map => map.Children.SelectMany(p => new[] { p.Key, p.Value }),
                YamlSequenceNode sequence => sequence.Children,
                _ => [],
            };
            foreach (var child in children)
            {
                if (FindAnchor(child) is { } found)
                {
                    return found;
                }
            }

            return null;
        }

        // YamlDotNet prefixes its messages with both marks; the error already says where.
        private static string YamlMessage(YamlException ex)
        {
            var message = ex.Message;
            var cut = message.IndexOf("): ", StringComparison.Ordinal);
            return message.StartsWith("(Line", StringComparison.Ordinal) && cut >= 0 ? message[(cut + 3)..] : message;
        }
    }
}
