using System.Diagnostics;
using System.Globalization;
using HdrHistogram;
using TrustedProxy.Policy;
using TrustedProxy.Testing;

namespace TrustedProxy.LoadTests;

/// <summary>
/// PDP decision latency with a large policy set: generates <c>rules</c> rules (and consent entries)
/// over 50 organisations, loads them through the real loader, then times Decide one call at a time
/// on one thread over a mix of request-level and record-level questions, into an HdrHistogram.
/// </summary>
internal static class PolicyDecisionBenchmark
{
    public static int Run(int rules, int decisions)
    {
        const int organisations = 50;
        const int consent = 1000;
        var yaml = PolicyGenerator.Yaml(rules, consent, organisations, seed: 7);
        var load = Stopwatch.StartNew();
        var set = PolicyLoader.Load([new PolicyFile("generated.yaml", yaml)]);
        var loadMs = load.Elapsed.TotalMilliseconds;

        var random = new Random(11);
        var requests = Enumerable.Range(0, 4096).Select(_ => Request(random, organisations, consent)).ToArray();
        for (var i = 0; i < 20_000; i++)
        {
            PolicyEvaluator.Evaluate(set, requests[i % requests.Length]);
        }

        var all = new LongHistogram(TimeSpan.FromSeconds(10).Ticks * 100, 3);
        var requestLevel = new LongHistogram(TimeSpan.FromSeconds(10).Ticks * 100, 3);
        var recordLevel = new LongHistogram(TimeSpan.FromSeconds(10).Ticks * 100, 3);
        var permits = 0;
        var total = Stopwatch.StartNew();
        for (var i = 0; i < decisions; i++)
        {
            var request = requests[i % requests.Length];
            var start = Stopwatch.GetTimestamp();
            var decision = PolicyEvaluator.Evaluate(set, request);
            var nanoseconds = (Stopwatch.GetTimestamp() - start) * 1_000_000_000 / Stopwatch.Frequency;
            all.RecordValue(nanoseconds);
            (request.Record is null ? requestLevel : recordLevel).RecordValue(nanoseconds);
            permits += decision.Permitted ? 1 : 0;
        }

        var seconds = total.Elapsed.TotalSeconds;
        static string Us(LongHistogram h, double p) => (h.GetValueAtPercentile(p) / 1000.0).ToString("F1", CultureInfo.InvariantCulture);
        Console.WriteLine($"# PDP decision latency: {set.RuleCount} rules + {set.ConsentCount} consent entries over {organisations} organisations, " +
            $"{decisions} decisions on one thread ({permits * 100 / decisions}% permits), {Environment.ProcessorCount} cores; policy loaded and checked in {loadMs:F0} ms");
        Console.WriteLine();
        Console.WriteLine("| decisions | p50 | p99 | p99.9 | max | decisions/s (one thread) |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (name, histogram) in new[] { ("all", all), ("request level", requestLevel), ("record level", recordLevel) })
        {
            Console.WriteLine($"| {name} ({histogram.TotalCount}) | {Us(histogram, 50)} µs | {Us(histogram, 99)} µs | {Us(histogram, 99.9)} µs | {histogram.GetMaxValue() / 1000.0:F1} µs | " +
                (name == "all" ? (decisions / seconds).ToString("F0", CultureInfo.InvariantCulture) : "") + " |");
        }

        return 0;
    }

    private static PolicyRequest Request(Random random, int organisations, int consent)
    {
        var role = random.Next(10) switch { < 7 => ProxyRole.Consumer, < 9 => ProxyRole.Producer, _ => ProxyRole.Admin };
        // Mostly reads, as a federation's traffic is; every action now and then.
        ProxyAction[] reads = [ProxyAction.Search, ProxyAction.Retrieve, ProxyAction.RetrieveOblivious];
        var action = random.Next(5) > 0 ? reads[random.Next(reads.Length)] : (ProxyAction)random.Next(Enum.GetValues<ProxyAction>().Length);
        var purpose = (PurposeOfUse)random.Next(3);
        var organisation = PolicyGenerator.Organisation(random.Next(organisations));
        var record = random.Next(4) == 0
            ? null
            : new RecordAttributes(
                "aaaaaaaaaaaaaaaaaaaaaaaaaa",
                PolicyGenerator.Organisation(random.Next(organisations)),
                PolicyGenerator.Pseudonym(random.Next(consent * 2)),
                PolicyGenerator.Modalities[random.Next(PolicyGenerator.Modalities.Length)],
                DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-random.Next(3000)));
        var justification = purpose == PurposeOfUse.Emergency && random.Next(2) == 0 ? "unconscious patient" : null;
        return new PolicyRequest(
            new FederationIdentity(organisation, role, "0A"), action, "GET /bench",
            DateTimeOffset.UtcNow.AddHours(random.Next(-84, 84)), new PolicyContext(purpose, BreakGlassJustification: justification), record);
    }
}
