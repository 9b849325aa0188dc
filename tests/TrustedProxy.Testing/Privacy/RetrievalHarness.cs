using System.Globalization;
using System.Text;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy;

/// <summary>An upload-cache configuration and a retrieval configuration, evaluated together.</summary>
public sealed record RetrievalCase(UploadCacheOptions Uploads, RetrievalConfiguration Retrieval)
{
    public string Label => $"{(Uploads.Enabled ? "upload cache on" : "upload cache off")}, {Retrieval.Label}";
}

/// <summary>Runs the request-side attacks over configurations side by side and writes them as Markdown.</summary>
public static class RetrievalHarness
{
    public static IReadOnlyList<RetrievalCase> StandardCases()
    {
        var on = new UploadCacheOptions();
        var off = on with { Enabled = false };
        var defaults = RetrievalConfiguration.Defaults;
        return
        [
            new(off, new RetrievalConfiguration(ReadMode.Direct)),
            new(on, new RetrievalConfiguration(ReadMode.Direct)),
            new(off, defaults),
            new(on, defaults with { Mode = ReadMode.GroupsImmediate, Relocate = false }),
            new(on, defaults with { Mode = ReadMode.GroupsImmediate }),
            new(on, defaults with { Relocate = false }),
            new(on, defaults with { GroupSize = 8 }),
            new(on, defaults with { LocalStreams = false }),
            new(on, defaults),
            new(on, defaults with { GroupsPerEpoch = 8 }),
            new(on, defaults with { CoverPerWanted = 3 }),
            new(on, defaults with { ObliviousTransfer = true }),
            new(on, defaults with { RelocationHoldHours = 0 }),
            new(on, defaults with { RelocationHoldHours = 72 }),
        ];
    }

    public static async Task<IReadOnlyList<RetrievalEvaluation>> EvaluateAllAsync(
        HospitalWorkload workload, RetrievalWorkloadOptions consumers, IReadOnlyList<RetrievalCase> cases, IReadOnlyList<TimeSpan> windows, int pairsPerClass, int seed)
    {
        // One upload log per upload configuration, shared by the retrieval cases over it.
        var logs = new Dictionary<UploadCacheOptions, Task<SimulatedLog>>();
        foreach (var uploads in cases.Select(c => c.Uploads).Distinct())
        {
            logs[uploads] = Task.Run(() => CuriousCloudSimulation.RunAsync(workload, uploads, seed));
        }

        var results = new RetrievalEvaluation[cases.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, cases.Count), new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, async (i, _) =>
        {
            var log = await logs[cases[i].Uploads].ConfigureAwait(false);
            results[i] = Evaluate(log, consumers, cases[i].Retrieval, windows, pairsPerClass, seed);
        }).ConfigureAwait(false);
        return results;
    }

    public static RetrievalEvaluation Evaluate(SimulatedLog log, RetrievalWorkloadOptions consumers, RetrievalConfiguration configuration, IReadOnlyList<TimeSpan> windows, int pairsPerClass, int seed)
    {
        var requests = RetrievalSimulation.Requests(log.Workload, consumers, log.Workload.Start + log.Workload.Duration);
        var reads = RetrievalSimulation.Run(log, requests, configuration, seed);
        return RequestLinkingAttack.Run(reads, windows, pairsPerClass, seed);
    }

    public static string ToMarkdown(IReadOnlyList<RetrievalCase> cases, IReadOnlyList<RetrievalEvaluation> evaluations, RetrievalWorkloadOptions consumers)
    {
        var text = new StringBuilder();
        void Line(string line = "") => text.Append(line).Append('\n');
        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        var windows = evaluations[0].Windows.Select(w => w.Window).ToList();

        Line(F($"Consumers: {consumers.RetrievalsPerStudy:0.#} consultations per study on average (Poisson), {consumers.InstanceShare:P0} of them for one instance, the rest for the whole study, log-normal delay after upload (median {consumers.MedianDelay.TotalHours:0.#} h, σ {consumers.DelaySigma}); intersection attack: {consumers.ProbeRecords} records fetched {consumers.ProbeRequests} times each. Pairs: up to the sample size per class, the same pairs at every window."));
        Line();
        Line("| configuration | requests (from cloud; same-record pairs) | reads/s | service mean / p99 | worst AUC (signal, window) | same record: overlap / volume / relocation AUC (best W) | same patient: overlap / volume / relocation AUC (best W) | read→upload AUC (best W) | intersection: success vs chance (best W) |");
        Line("|---|---|---|---|---|---|---|---|---|");
        for (var i = 0; i < evaluations.Count; i++)
        {
            var e = evaluations[i];
            var (worstWindow, worst) = e.Worst;
            string Best(Func<RequestWindowResult, LinkSignal> pick) => string.Join(" / ", [A(e.Windows.Select(pick).MaxBy(s => Math.Abs(s.Auc - 0.5))!.Auc)]);
            string Triple(Func<RequestWindowResult, IReadOnlyList<LinkSignal>> pick) =>
                string.Join(" / ", Enumerable.Range(0, 3).Select(k => Best(w => pick(w)[k])));
            var x = e.BestIntersection;
            Line(F($"| {cases[i].Label} | {e.Requests} ({e.ShareFromCloud:P0}; {e.Windows[0].Positives}) | {e.ObjectReadsPerSecond:0.##} | {D(e.MeanServiceSeconds)} / {D(e.P99ServiceSeconds)} | {A(worst.Auc)} ({worst.Name}, {W(worstWindow)}) | {Triple(w => w.SameRecord)} | {Triple(w => w.SamePatient)} | {Best(w => w.ReadToUpload)} | {x.Success:P0} vs {x.Chance:P1} ({W(x.Window)}; record {x.RecordFrequency:0.#} vs other {x.OtherFrequency:0.#} of {consumers.ProbeRequests}) |"));
        }

        Line();
        Line("Same record, every signal and window: AUC (balanced accuracy).");
        Line();
        Line(F($"| configuration | {string.Join(" | ", windows.SelectMany(w => new[] { $"overlap {W(w)}", $"volume {W(w)}", $"relocation {W(w)}" }))} |"));
        Line($"|---|{string.Concat(windows.SelectMany(_ => new[] { "---|", "---|", "---|" }))}");
        for (var i = 0; i < evaluations.Count; i++)
        {
            Line(F($"| {cases[i].Label} | {string.Join(" | ", evaluations[i].Windows.SelectMany(w => w.SameRecord).Select(s => $"{A(s.Auc)} ({A(s.BalancedAccuracy)})"))} |"));
        }

        Line();
        Line("Harness checks (request times only, not the proxy): same-record pairs against their matched negatives by the number of requests in the window (AUC at each window), and by how early the pair's first request is; both at chance when the negatives are matched fairly.");
        Line();
        for (var i = 0; i < evaluations.Count; i++)
        {
            Line(F($"- {cases[i].Label}: request density {string.Join(", ", evaluations[i].Windows.Select(w => $"{W(w.Window)} {A(w.RequestDensity.Auc)}"))}; first request time {A(evaluations[i].Windows[0].FirstRequestTime.Auc)}"));
        }

        return text.ToString();
    }

    private static string A(double auc) => double.IsNaN(auc) ? "–" : auc.ToString("0.000", CultureInfo.InvariantCulture);

    private static string D(double seconds) => PrivacyConfiguration.Duration(seconds);

    private static string W(TimeSpan window) => PrivacyConfiguration.Duration(window.TotalSeconds);
}
