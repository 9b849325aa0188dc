namespace TrustedProxy.Policy;

/// <summary>
/// What a policy file may say: the keys of each kind of mapping and the words of each enumeration.
/// The loader accepts exactly these; <c>config/policies/policy.schema.json</c> publishes them, and a
/// test keeps the two the same.
/// </summary>
internal static class PolicySchema
{
    /// <summary>The one format version this proxy reads (the <c>version</c> key of every file).</summary>
    public const int FormatVersion = 1;

    public const string File = "file";
    public const string Rule = "rule";
    public const string Condition = "condition";
    public const string Time = "time";
    public const string Record = "record";
    public const string StudyDate = "studyDate";
    public const string Obligations = "obligations";
    public const string Consent = "consent";
    public const string WithheldFrom = "withheldFrom";

    private static readonly string[] ConditionKeys = ["roles", "organisations", "actions", "purposes", "time", "record"];

    /// <summary>The keys each kind of mapping accepts; the JSON Schema has one definition per kind (the file is its root).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Keys { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        [File] = ["version", "description", "rules", "consent"],
        [Rule] = ["id", "description", "effect", .. ConditionKeys, "unless", "obligations", "breakGlass", "overrides", "overridesConsent"],
        [Condition] = ConditionKeys,
        [Time] = ["days", "from", "to", "timezone"],
        [Record] = ["origin", "modalities", "studyDate"],
        [StudyDate] = ["from", "to", "minAgeDays", "maxAgeDays"],
        [Obligations] = ["view", "profile", "fingerprint", "minObliviousSet"],
        [Consent] = ["id", "description", "patient", "withheldFrom", "recorded"],
        [WithheldFrom] = ["organisations", "purposes"],
    };

    public static IReadOnlyList<string> Effects { get; } = ["permit", "deny", "oblige"];

    public static IReadOnlyList<string> Views { get; } = ["original", "deidentified"];

    public static IReadOnlyList<string> Days { get; } = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    /// <summary>The words <c>origin</c> takes besides a list of organisations: the caller's own organisation, or any other.</summary>
    public static IReadOnlyList<string> OriginWords { get; } = ["own", "other"];

    /// <summary>The enumerations by the name the JSON Schema gives them in <c>$defs</c>.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Enumerations { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        ["effect"] = Effects,
        ["role"] = ProxyRoles.Names,
        ["action"] = ProxyActions.Names,
        ["purpose"] = PurposesOfUse.Names,
        ["view"] = Views,
        ["day"] = Days,
        ["originWord"] = OriginWords,
    };

    public static DayOfWeek ToDayOfWeek(string day) => (DayOfWeek)((Days.ToList().IndexOf(day) + 1) % 7);
}
