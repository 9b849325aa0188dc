using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Policy;

/// <summary>Settings of the role-based policy. Section TrustedProxy:Policy.</summary>
public sealed record PolicyOptions : IValidatableObject
{
    /// <summary>
    /// Organisations whose consumers may receive unmarked originals; every other consumer's copies
    /// carry a fingerprint. <c>*</c> names every organisation (fingerprinting off).
    /// </summary>
    public string[] UnmarkedOriginals { get; init; } = [];

    public bool AllowsUnmarked(string organisation) =>
        UnmarkedOriginals.Any(o => o == "*" || string.Equals(o, organisation, StringComparison.Ordinal));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (UnmarkedOriginals.Any(string.IsNullOrWhiteSpace))
        {
            yield return new ValidationResult("an organisation name is empty", [nameof(UnmarkedOriginals)]);
        }
    }
}
