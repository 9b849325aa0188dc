namespace TrustedProxy.Policy;

// The compiled form of a policy set: immutable, checked, indexed for evaluation. The loader builds
// it from the files; the evaluator only reads it.

internal enum RuleEffect
{
    Permit,
    Deny,
    Oblige,
}

internal enum RuleKind
{
    /// <summary>An entry of a file's <c>rules</c> list.</summary>
    Rule,

    /// <summary>An entry of a file's <c>consent</c> list: a deny about one patient's records.</summary>
    Consent,
}

/// <summary>Whether a condition holds: yes, no, or unknown (the record is not known yet, or lacks the attribute).</summary>
internal enum Match
{
    No,
    Yes,
    Unknown,
}

/// <summary>Days of the week and a time of day in a time zone; a window whose end is before its start runs over midnight.</summary>
internal sealed record TimeWindow(IReadOnlySet<DayOfWeek>? Days, TimeOnly? From, TimeOnly? To, TimeZoneInfo Zone)
{
    public bool Contains(DateTimeOffset time)
    {
        var local = TimeZoneInfo.ConvertTime(time, Zone);
        if (Days is not null && !Days.Contains(local.DayOfWeek))
        {
            return false;
        }

        if (From is not { } from || To is not { } to)
        {
            return true;
        }

        var clock = TimeOnly.FromDateTime(local.DateTime);
        return from < to ? clock >= from && clock < to : clock >= from || clock < to;
    }
}

internal enum OriginKind
{
    /// <summary>Uploaded by the caller's own organisation.</summary>
    Own,

    /// <summary>Uploaded by any other organisation.</summary>
    Other,

    /// <summary>Uploaded by one of the named organisations.</summary>
    Listed,
}

internal sealed record OriginCondition(OriginKind Kind, IReadOnlySet<string> Names);

/// <summary>A study-date range (inclusive) and an age range in days at the time of the request.</summary>
internal sealed record StudyDateCondition(DateOnly? From, DateOnly? To, int? MinAgeDays, int? MaxAgeDays)
{
    public bool Contains(DateOnly date, DateTimeOffset now)
    {
        var age = DateOnly.FromDateTime(now.UtcDateTime).DayNumber - date.DayNumber;
        return (From is null || date >= From) && (To is null || date <= To) && (MinAgeDays is null || age >= MinAgeDays) && (MaxAgeDays is null || age <= MaxAgeDays);
    }
}

/// <summary>Conditions on the record; <see cref="Patient"/> only in consent entries.</summary>
internal sealed record RecordCondition(OriginCondition? Origin, IReadOnlySet<string>? Modalities, StudyDateCondition? StudyDate, string? Patient = null);

/// <summary>What a request must be for a rule to match; a null part matches anything.</summary>
internal sealed record Condition(
    IReadOnlySet<ProxyRole>? Roles,
    IReadOnlySet<string>? Organisations,
    IReadOnlySet<ProxyAction>? Actions,
    IReadOnlySet<PurposeOfUse>? Purposes,
    TimeWindow? Time,
    RecordCondition? Record)
{
    /// <summary>
    /// Evaluates with three values: a part that does not hold makes it No whatever else is unknown;
    /// otherwise a record part that cannot be judged (no record yet, or the record lacks the
    /// attribute) makes it Unknown, with the reason.
    /// </summary>
    public (Match Match, string? Unknown) Evaluate(PolicyRequest request)
    {
        if ((Roles is not null && !Roles.Contains(request.Subject.Role)) ||
            (Organisations is not null && !Organisations.Contains(request.Subject.Organisation)) ||
            (Actions is not null && !Actions.Contains(request.Action)) ||
            (Purposes is not null && !Purposes.Contains(request.Context.Purpose)) ||
            (Time is not null && !Time.Contains(request.Time)))
        {
            return (Match.No, null);
        }

        if (Record is null)
        {
            return (Match.Yes, null);
        }

        if (request.Record is not { } record)
        {
            return (Match.Unknown, "it depends on the record");
        }

        string? unknown = null;
        if (Record.Origin is { } origin && !(origin.Kind switch
        {
            OriginKind.Own => string.Equals(record.OriginOrganisation, request.Subject.Organisation, StringComparison.Ordinal),
            OriginKind.Other => !string.Equals(record.OriginOrganisation, request.Subject.Organisation, StringComparison.Ordinal),
            _ => origin.Names.Contains(record.OriginOrganisation),
        }))
        {
            return (Match.No, null);
        }

        // A consent entry is about one patient: a record without a Patient ID is not that patient's.
        if (Record.Patient is { } patient && !string.Equals(patient, record.PatientPseudonym, StringComparison.Ordinal))
        {
            return (Match.No, null);
        }

        if (Record.Modalities is { } modalities)
        {
            if (string.IsNullOrEmpty(record.Modality))
            {
                unknown = "the record has no modality";
            }
            else if (!modalities.Contains(record.Modality))
            {
                return (Match.No, null);
            }
        }

        if (Record.StudyDate is { } range)
        {
            if (record.StudyDate is not { } date)
            {
                unknown ??= "the record has no study date";
            }
            else if (!range.Contains(date, request.Time))
            {
                return (Match.No, null);
            }
        }

        return unknown is null ? (Match.Yes, null) : (Match.Unknown, unknown);
    }
}

/// <summary>The obligations one rule imposes; null parts impose nothing.</summary>
internal sealed record RuleObligations(RecordView? View, string? Profile, bool? Fingerprint, int? MinObliviousSet);

/// <summary>One rule or consent entry, checked and in policy order.</summary>
internal sealed record PolicyRule(
    string Id,
    RuleKind Kind,
    RuleEffect Effect,
    string Source,
    string? Description,
    Condition When,
    Condition? Unless,
    RuleObligations? Obligations,
    bool BreakGlass,
    IReadOnlyList<string> Overrides,
    bool OverridesConsent)
{
    /// <summary>The rule's place in the set (files by name, then as written); set by <see cref="PolicySet"/>.</summary>
    public int Order { get; init; }

    public string EffectName => PolicySchema.Effects[(int)Effect];

    public string KindName => Kind == RuleKind.Consent ? "consent" : "rule";

    /// <summary>Matches when <see cref="When"/> holds and <see cref="Unless"/> does not, in three values.</summary>
    public (Match Match, string? Unknown) Evaluate(PolicyRequest request)
    {
        var (when, whenUnknown) = When.Evaluate(request);
        if (when == Match.No)
        {
            return (Match.No, null);
        }

        if (Unless is null)
        {
            return (when, whenUnknown);
        }

        var (unless, unlessUnknown) = Unless.Evaluate(request);
        return unless switch
        {
            Match.Yes => (Match.No, null),
            Match.Unknown => (Match.Unknown, whenUnknown ?? unlessUnknown),
            _ => (when, whenUnknown),
        };
    }
}
