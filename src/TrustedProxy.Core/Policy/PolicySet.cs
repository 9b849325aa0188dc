using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Policy;

/// <summary>A policy file as read: its name in the directory and its text.</summary>
public sealed record PolicyFile(string Name, string Content)
{
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Content)));
}

/// <summary>
/// A loaded, checked policy set: its files (for the history and the dashboard), its rules in policy
/// order (files by name, then as written), and its version, the SHA-256 over every file's name and
/// text. Rules are indexed by action, role and the organisation they name, consent entries by
/// patient pseudonym, so that a decision looks only at the rules that can match it.
/// </summary>
internal sealed class PolicySet
{
    private static readonly int RoleCount = Enum.GetValues<ProxyRole>().Length;
    private static readonly int ActionCount = Enum.GetValues<ProxyAction>().Length;

    private readonly Slot[] _byActionAndRole;
    private readonly Dictionary<string, PolicyRule[]> _consentByPatient;

    public PolicySet(IReadOnlyList<PolicyFile> files, IReadOnlyList<PolicyRule> rules)
    {
        Files = files;
        Rules = rules.Select((r, i) => r with { Order = i }).ToList();
        Version = ComputeVersion(files);
        _byActionAndRole = new Slot[ActionCount * RoleCount];
        foreach (var action in Enum.GetValues<ProxyAction>())
        {
            foreach (var role in Enum.GetValues<ProxyRole>())
            {
                var matching = Rules.Where(r => r.Kind == RuleKind.Rule && (r.When.Actions?.Contains(action) ?? true) && (r.When.Roles?.Contains(role) ?? true)).ToList();
                _byActionAndRole[SlotOf(action, role)] = new Slot(
                    matching.Where(r => r.When.Organisations is null).ToArray(),
                    matching.Where(r => r.When.Organisations is not null)
                        .SelectMany(r => r.When.Organisations!.Select(o => (Organisation: o, Rule: r)))
                        .GroupBy(p => p.Organisation, StringComparer.Ordinal)
                        .ToDictionary(g => g.Key, g => g.Select(p => p.Rule).ToArray(), StringComparer.Ordinal));
            }
        }

        _consentByPatient = Rules.Where(r => r.Kind == RuleKind.Consent)
            .GroupBy(r => r.When.Record!.Patient!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
    }

    public IReadOnlyList<PolicyFile> Files { get; }

    public IReadOnlyList<PolicyRule> Rules { get; }

    /// <summary>Lowercase hex SHA-256 of the set.</summary>
    public string Version { get; }

    public int RuleCount => Rules.Count(r => r.Kind == RuleKind.Rule);

    public int ConsentCount => Rules.Count(r => r.Kind == RuleKind.Consent);

    /// <summary>
    /// The rules (not consent entries) that can match this action by this role from this
    /// organisation: those that name no organisation, and those that name it; each in policy order
    /// (<see cref="PolicyRule.Order"/>), for the caller to merge.
    /// </summary>
    public (PolicyRule[] AnyOrganisation, PolicyRule[] ThisOrganisation) Candidates(ProxyAction action, ProxyRole role, string organisation)
    {
        if ((uint)action >= ActionCount || (uint)role >= RoleCount)
        {
            return ([], []);
        }

        var slot = _byActionAndRole[SlotOf(action, role)];
        return (slot.AnyOrganisation, slot.ByOrganisation.TryGetValue(organisation, out var named) ? named : []);
    }

    /// <summary>The consent entries about this patient.</summary>
    public ReadOnlySpan<PolicyRule> ConsentFor(string? patientPseudonym) =>
        patientPseudonym is not null && _consentByPatient.TryGetValue(patientPseudonym, out var entries) ? entries : [];

    public static string ComputeVersion(IEnumerable<PolicyFile> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            var content = Encoding.UTF8.GetBytes(file.Content);
            hash.AppendData(Encoding.UTF8.GetBytes($"{file.Name}\n{content.Length}\n"));
            hash.AppendData(content);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static int SlotOf(ProxyAction action, ProxyRole role) => ((int)action * RoleCount) + (int)role;

    private sealed record Slot(PolicyRule[] AnyOrganisation, Dictionary<string, PolicyRule[]> ByOrganisation);
}
