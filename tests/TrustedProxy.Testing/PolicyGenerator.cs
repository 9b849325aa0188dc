using System.Globalization;
using System.Text;

namespace TrustedProxy.Testing;

/// <summary>
/// Writes large policy sets of the kinds a federation would have (per-organisation grants,
/// restrictions on modalities and origins, time windows, obligations, consent entries), for the
/// decision-latency benchmark and the tests that the rule index finds every rule that can match.
/// </summary>
public static class PolicyGenerator
{
    public static readonly string[] Modalities = ["CT", "MR", "US", "CR", "DX", "MG", "NM", "PT", "XA", "OT"];

    public static string Organisation(int index) => $"Hospital {index:D3}";

    public static string Pseudonym(int index) => index.ToString("x32", CultureInfo.InvariantCulture);

    /// <summary>A YAML file of <paramref name="rules"/> rules and <paramref name="consent"/> consent entries over <paramref name="organisations"/> organisations.</summary>
    public static string Yaml(int rules, int consent, int organisations, int seed)
    {
        var random = new Random(seed);
        var text = new StringBuilder("version: 1\ndescription: generated\nrules:\n");
        for (var i = 0; i < rules; i++)
        {
            var org = Organisation(random.Next(organisations));
            var other = Organisation(random.Next(organisations));
            var modality = Modalities[random.Next(Modalities.Length)];
            var hour = random.Next(24);
            text.Append(CultureInfo.InvariantCulture, $"  - id: rule-{i:D5}\n");
            text.Append((i % 10) switch
            {
                0 or 1 or 2 => $"    effect: permit\n    organisations: [\"{org}\"]\n    roles: [consumer]\n    actions: [search, retrieve, retrieve-oblivious]\n    purposes: [treatment, research]\n",
                3 => $"    effect: permit\n    organisations: [\"{org}\"]\n    roles: [producer]\n    actions: [upload, search, retrieve]\n    record:\n      origin: own\n",
                4 => $"    effect: deny\n    organisations: [\"{org}\"]\n    actions: [search, retrieve, retrieve-oblivious]\n    record:\n      modalities: [{modality}]\n",
                5 => $"    effect: deny\n    organisations: [\"{org}\"]\n    purposes: [research]\n    unless:\n      time:\n        days: [mon, tue, wed, thu, fri]\n        from: \"{hour:D2}:00\"\n        to: \"{(hour + 16) % 24:D2}:00\"\n        timezone: Europe/Oslo\n",
                6 => $"    effect: oblige\n    organisations: [\"{org}\"]\n    actions: [retrieve, retrieve-oblivious]\n    obligations:\n      fingerprint: true\n",
                7 => $"    effect: deny\n    actions: [search, retrieve, retrieve-oblivious]\n    record:\n      origin: [\"{other}\"]\n      studyDate:\n        maxAgeDays: {random.Next(1, 60)}\n    unless:\n      organisations: [\"{other}\"]\n",
                8 => $"    effect: oblige\n    purposes: [research]\n    organisations: [\"{org}\"]\n    actions: [search, retrieve, retrieve-oblivious]\n    obligations:\n      view: deidentified\n      minObliviousSet: {random.Next(2, 16)}\n",
                _ => $"    effect: permit\n    organisations: [\"{org}\"]\n    roles: [consumer]\n    actions: [search, retrieve]\n    purposes: [emergency]\n    breakGlass: true\n    overridesConsent: true\n",
            });
        }

        if (consent > 0)
        {
            text.Append("consent:\n");
            for (var i = 0; i < consent; i++)
            {
                text.Append(CultureInfo.InvariantCulture, $"  - id: consent-{i:D5}\n    patient: {Pseudonym(i)}\n");
                if (i % 2 == 0)
                {
                    text.Append("    withheldFrom:\n      purposes: [research]\n");
                }
            }
        }

        return text.ToString();
    }
}
