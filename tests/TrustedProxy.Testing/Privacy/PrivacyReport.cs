using System.Globalization;
using System.Text;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy;

/// <summary>The harness's results as Markdown: one summary row per configuration, then a table per attack.</summary>
public static class PrivacyReport
{
    public static string ToMarkdown(HospitalWorkload workload, AttackSettings settings, IReadOnlyList<PrivacyEvaluation> evaluations)
    {
        var o = workload.Options;
        var text = new StringBuilder();
        void Line(string line = "") => text.Append(line).Append('\n');
        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

        Line(F($"Workload: {o.Hospitals} hospitals, {o.StudiesPerHospitalPerDay:0.#} studies/day each (diurnal swing ±{o.DiurnalAmplitude:P0}, backlog pushes after {o.BacklogShare:P0} of studies), {workload.Duration.TotalHours:0.#} h simulated, seed {o.Seed}; {workload.Studies.Count} studies, {workload.Records.Count} records."));
        Line(F($"Load with fixed 128 KiB blocks: {workload.Load(new FixedBlockPadding(128 * 1024))}."));
        Line(F($"Load with Padmé: {workload.Load(new PadmePadding())}."));
        Line(F($"Attacker: {settings.UploadSamples} sampled uploads, {settings.PairsPerClass} pairs per class and window, schedule seed {settings.Seed}."));
        Line();

        Line("| configuration | upload link acc. (chance) | same-patient time AUC 10 s / 1 min / 10 min / 1 h / whole log | size AUC ≤ 1 h (log) | name AUC, worst | best bal. acc. ≤ 1 h | burst r / AUC (best W) | entropy mean / p5 / min, bits | delay mean / p99 (record p99) | dummies/s | dummy GB/day |");
        Line("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var e in evaluations)
        {
            var windowed = e.Pairs.Where(p => p.Window is { } w && w <= TimeSpan.FromHours(1)).ToList();
            var whole = e.Pairs.FirstOrDefault(p => p.Window is null);
            var time = string.Join(" / ", e.Pairs.Select(p => A(p.Time.Auc)));
            var size = windowed.Count == 0 ? "–" : A(windowed.MaxBy(p => Math.Abs(p.Size.Auc - 0.5))!.Size.Auc);
            var sizeLog = whole is null ? "" : $" ({A(whole.Size.Auc)})";
            var name = e.Pairs.SelectMany(p => new[] { p.NamePrefix.Auc, p.NameCloseness.Auc }).MaxBy(a => Math.Abs(a - 0.5));
            var balanced = windowed.Count == 0 ? double.NaN : windowed.SelectMany(p => p.Signals).Max(s => s.Result.BalancedAccuracy);
            var burst = e.BestBurst;
            var a = e.Anonymity;
            var c = e.Cost;
            Line(F($"| {e.Configuration.Label} | {P(Math.Max(e.Linking.FirstWriteAccuracy, e.Linking.DensityAccuracy))} ({P(e.Linking.Chance)}) | {time} | {size}{sizeLog} | {A(name)} | {A(balanced)} | {burst.Correlation:0.00} / {A(burst.Auc)} ({W(burst.Window)}) | {a.MeanBits:0.0} / {a.P5Bits:0.0} / {a.MinBits:0.0} | {D(c.MeanDelaySeconds)} / {D(c.P99DelaySeconds)} ({D(c.RecordP99DelaySeconds)}) | {c.DummiesPerSecond:0.##} | {c.DummyBytesPerDay / 1e9:0.#} |"));
        }

        Line();
        Line("Same-patient pairs, AUC (best-threshold balanced accuracy) per attacker window; positives/negatives sampled per cell as in the header.");
        foreach (var (signal, pick) in new (string, Func<PairWindowResult, PairSignal>)[]
        {
            ("time (−|Δt|)", p => p.Time), ("size (−|Δsize|)", p => p.Size), ("name prefix (shared hex digits)", p => p.NamePrefix), ("name closeness (−|Δ| of leading 52 bits)", p => p.NameCloseness),
        })
        {
            Line();
            Line(F($"| {signal} | {string.Join(" | ", settings.PairWindows.Select(w => w is { } x ? W(x) : "whole log"))} |"));
            Line($"|---|{string.Concat(settings.PairWindows.Select(_ => "---|"))}");
            foreach (var e in evaluations)
            {
                Line(F($"| {e.Configuration.Label} | {string.Join(" | ", e.Pairs.Select(p => $"{A(pick(p).Auc)} ({A(pick(p).BalancedAccuracy)})"))} |"));
            }
        }

        Line();
        Line("Burst size: correlation of (writes in [t, t+W] − mean rate × W) with the study's true object count / AUC of above-median vs below-median studies.");
        Line();
        Line(F($"| configuration | {string.Join(" | ", settings.BurstWindows.Select(W))} |"));
        Line($"|---|{string.Concat(settings.BurstWindows.Select(_ => "---|"))}");
        foreach (var e in evaluations)
        {
            Line(F($"| {e.Configuration.Label} | {string.Join(" | ", e.Bursts.Select(b => F($"{b.Correlation:0.00} / {A(b.Auc)}")))} |"));
        }

        Line();
        Line("Upload linking and anonymity: accuracy of the first write at or after the arrival and of the most likely delay, chance in the same candidate window; effective anonymity set 2^H.");
        Line();
        Line("| configuration | candidate window | first write | max density | chance | 2^H mean | 2^H p5 | real writes/s | max delay | log span |");
        Line("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var e in evaluations)
        {
            var l = e.Linking;
            Line(F($"| {e.Configuration.Label} | {D(l.CandidateWindowSeconds)} | {P(l.FirstWriteAccuracy)} | {P(l.DensityAccuracy)} | {P(l.Chance)} | {N(e.Anonymity.MeanEffectiveSetSize)} | {N(e.Anonymity.P5EffectiveSetSize)} | {e.Cost.RealWritesPerSecond:0.##} | {D(e.Cost.MaxDelaySeconds)} | {D(e.Cost.LogSeconds)} |"));
        }

        return text.ToString();
    }

    private static string A(double auc) => double.IsNaN(auc) ? "–" : auc.ToString("0.000", CultureInfo.InvariantCulture);

    private static string P(double p) => (p * 100).ToString(p < 0.01 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + "%";

    private static string N(double n) => n >= 1e4 ? n.ToString("0.0e0", CultureInfo.InvariantCulture) : n.ToString("0", CultureInfo.InvariantCulture);

    private static string D(double seconds) => PrivacyConfiguration.Duration(seconds);

    private static string W(TimeSpan window) => PrivacyConfiguration.Duration(window.TotalSeconds);
}
