using System.Diagnostics;
using System.Globalization;
using TrustedProxy.Testing.Privacy;

/// <summary>
/// The curious-cloud harness at report length: simulates the documented hospital load through each
/// upload-cache configuration in virtual time and prints every attack's result as Markdown (the
/// table of docs/privacy.md). Progress goes to standard error.
/// </summary>
internal static class PrivacyScenario
{
    public const double DefaultHours = 168;

    public static async Task<int> RunAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var hours = double.Parse(Value("--hours") ?? DefaultHours.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var seed = int.Parse(Value("--seed") ?? "1", CultureInfo.InvariantCulture);

        var watch = Stopwatch.StartNew();
        var workload = HospitalWorkload.Generate(new WorkloadOptions { Duration = TimeSpan.FromHours(hours), Seed = seed });
        var settings = new AttackSettings { Seed = seed };
        var configurations = PrivacyHarness.StandardConfigurations();
        Console.Error.WriteLine($"simulating {configurations.Count} configurations over {hours} h on {Environment.ProcessorCount} cores");
        var evaluations = await PrivacyHarness.EvaluateAllAsync(workload, configurations, settings);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done in {watch.Elapsed.TotalSeconds:F0} s"));

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# What a curious cloud can link: {hours:0.#} h simulated, seed {seed}"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"`dotnet run -c Release --project loadtests/TrustedProxy.LoadTests -- privacy --hours {hours:0.#} --seed {seed}`"));
        Console.WriteLine();
        Console.Write(PrivacyReport.ToMarkdown(workload, settings, evaluations));
        return 0;
    }

    /// <summary>The request-side attacks (issue 5): reads of consultations over each upload log, every retrieval configuration side by side.</summary>
    public static async Task<int> RunRetrievalAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var hours = double.Parse(Value("--hours") ?? "96", CultureInfo.InvariantCulture);
        var seed = int.Parse(Value("--seed") ?? "1", CultureInfo.InvariantCulture);
        var pairs = int.Parse(Value("--pairs") ?? "2000", CultureInfo.InvariantCulture);

        var watch = Stopwatch.StartNew();
        var workload = HospitalWorkload.Generate(new WorkloadOptions { Duration = TimeSpan.FromHours(hours), Seed = seed });
        var consumers = new RetrievalWorkloadOptions { Seed = seed + 2 };
        // --min-stream-groups 8,512,1024: only the defaults, at each smallest size class (a quick sweep);
        // --stream-floor 0,declared,270: the same for the stream floor, in MB ("declared": the product's rule);
        // --padding-near-study: the defaults, and with a request's padding free to take its study's other records (the earlier rule).
        var cases = Value("--min-stream-groups") is { } mins
            ? mins.Split(',').Select(m => new RetrievalCase(new TrustedProxy.UploadCache.UploadCacheOptions(), RetrievalConfiguration.Defaults with { MinStreamGroups = int.Parse(m, CultureInfo.InvariantCulture) })).ToList()
            : args.Contains("--padding-near-study")
                ? [new RetrievalCase(new TrustedProxy.UploadCache.UploadCacheOptions(), RetrievalConfiguration.Defaults), new RetrievalCase(new TrustedProxy.UploadCache.UploadCacheOptions(), RetrievalConfiguration.Defaults with { PaddingAvoidsStudy = false })]
            : Value("--stream-floor") is { } floors
                ? floors.Split(',').Select(f => new RetrievalCase(new TrustedProxy.UploadCache.UploadCacheOptions(), RetrievalConfiguration.Defaults with { StreamFloorMegabytes = f == "declared" ? null : double.Parse(f, CultureInfo.InvariantCulture) })).ToList()
                : RetrievalHarness.StandardCases();
        Console.Error.WriteLine($"simulating {cases.Count} retrieval configurations over {hours} h on {Environment.ProcessorCount} cores");
        var evaluations = await RetrievalHarness.EvaluateAllAsync(workload, consumers, cases, RequestLinkingAttack.DefaultWindows, pairs, seed);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done in {watch.Elapsed.TotalSeconds:F0} s"));

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"# What a curious cloud can link from reads: {hours:0.#} h simulated, seed {seed}"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"`dotnet run -c Release --project loadtests/TrustedProxy.LoadTests -- retrieval --hours {hours:0.#} --seed {seed} --pairs {pairs}`"));
        Console.WriteLine();
        Console.Write(RetrievalHarness.ToMarkdown(cases, evaluations, consumers));
        return 0;
    }
}
