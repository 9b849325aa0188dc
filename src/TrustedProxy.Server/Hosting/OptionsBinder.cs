using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// Binds option records and validates them before anything starts, collecting every error of
/// every section so that an operator fixes the configuration in one go.
/// </summary>
internal sealed class OptionsBinder(IConfiguration configuration)
{
    private readonly List<string> _errors = [];

    public T Bind<T>(string section)
        where T : class, new()
    {
        var value = configuration.GetSection(section).Get<T>(o => o.ErrorOnUnknownConfiguration = false) ?? new T();
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
        {
            _errors.AddRange(results.Select(r => $"{section}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
        }

        return value;
    }

    public void AddErrors(IEnumerable<string> errors) => _errors.AddRange(errors);

    /// <summary>Throws one exception listing every problem found, if any.</summary>
    public void ThrowIfInvalid()
    {
        if (_errors.Count > 0)
        {
            throw new InvalidConfigurationException(_errors);
        }
    }
}

/// <summary>The configuration is invalid; every problem is listed.</summary>
public sealed class InvalidConfigurationException(IReadOnlyList<string> errors)
    : Exception("invalid configuration: " + string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}
