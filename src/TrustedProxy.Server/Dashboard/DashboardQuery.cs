using System.Globalization;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// Reads a page's query string the way its forms send it (an empty field means "any"), collecting
/// every error so that the caller gets them all in one problem.
/// </summary>
internal sealed class DashboardQuery(IQueryCollection query)
{
    public const string DateFormat = "yyyy-MM-dd";

    private readonly List<string> _errors = [];

    /// <summary>Free text, trimmed; null when absent or empty.</summary>
    public string? Text(string name, int maxLength)
    {
        var value = Single(name);
        if (value is not null && value.Length > maxLength)
        {
            _errors.Add($"{name} is longer than {maxLength} characters");
            return null;
        }

        return value;
    }

    /// <summary>One of <paramref name="allowed"/> exactly; null when absent or empty.</summary>
    public string? Choice(string name, IReadOnlyList<string> allowed)
    {
        var value = Single(name);
        if (value is not null && !allowed.Contains(value, StringComparer.Ordinal))
        {
            _errors.Add($"{name} must be one of {string.Join(", ", allowed)}");
            return null;
        }

        return value;
    }

    /// <summary>A calendar day, <c>yyyy-MM-dd</c> (what a date input sends).</summary>
    public DateOnly? Date(string name)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }

        if (!DateOnly.TryParseExact(value, DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            _errors.Add($"{name} must be a date as {DateFormat}");
            return null;
        }

        return date;
    }

    /// <summary>A positive decision id.</summary>
    public long? Id(string name)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id < 1)
        {
            _errors.Add($"{name} must be a positive whole number");
            return null;
        }

        return id;
    }

    public void Error(string message) => _errors.Add(message);

    /// <summary>The problem to answer with, if any value was wrong.</summary>
    public IResult? Problem() => _errors.Count == 0 ? null : Problems.Problem.Result(ProblemTypes.InvalidQuery, string.Join("; ", _errors));

    private string? Single(string name)
    {
        var values = query[name];
        if (values.Count > 1)
        {
            _errors.Add($"give {name} once");
            return null;
        }

        var value = values.ToString().Trim();
        return value.Length == 0 ? null : value;
    }
}

/// <summary>Whole UTC days, both ends included.</summary>
internal readonly record struct DayRange(DateOnly From, DateOnly To)
{
    public DateTimeOffset Start => new(From.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    /// <summary>The first instant after the period.</summary>
    public DateTimeOffset End => new(To.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    public int Days => To.DayNumber - From.DayNumber + 1;

    public static DateTimeOffset StartOf(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    public static string Text(DateOnly day) => day.ToString(DashboardQuery.DateFormat, CultureInfo.InvariantCulture);
}
