using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// The load a site declares at <c>tproxy init</c>: how many retrievals a day, of what size (the read
/// schedule's cover model starts from it, docs/oblivious-retrieval.md), and how many uploads a day,
/// of what size (the upload cache's slot rate follows it, docs/upload-cache.md). It is kept in
/// <see cref="FileName"/> under the proxy's directory, which the server reads over
/// <c>config/appsettings.json</c> and under the environment.
/// </summary>
public static class DeclaredLoad
{
    public const string FileName = "config/declared-load.json";

    /// <summary>A declaration: reads and writes, each a count a day and a size in MB.</summary>
    public sealed record Values(double RetrievalsPerDay, double RetrievalMegabytes, double UploadsPerDay, double UploadMegabytes)
    {
        /// <summary>What a site that declares nothing runs with.</summary>
        public static Values Defaults
        {
            get
            {
                var reads = new ObliviousRetrievalOptions();
                var writes = new UploadCacheOptions();
                return new(reads.DeclaredRetrievalsPerDay, reads.DeclaredRetrievalMegabytes, writes.DeclaredUploadsPerDay, writes.DeclaredUploadMegabytes);
            }
        }
    }

    /// <summary>Checks the declaration: a list of what is wrong, empty when it can be kept.</summary>
    public static IReadOnlyList<string> Validate(Values load)
    {
        var errors = new List<string>();
        if (!(load.RetrievalsPerDay is >= 0 and <= 1_000_000))
        {
            errors.Add("--retrievals-per-day must be between 0 and 1,000,000");
        }

        if (!(load.RetrievalMegabytes is >= 0.01 and <= 1_000_000))
        {
            errors.Add("--retrieval-megabytes must be between 0.01 and 1,000,000");
        }

        errors.AddRange(SlotRate.Validate(load.UploadsPerDay, load.UploadMegabytes, new UploadCacheOptions().BlockSizeBytes, backup: true));
        return errors;
    }

    /// <summary>The declaration kept under <paramref name="root"/>, with the defaults for what it does not say (or for all of it when there is none).</summary>
    public static Values Read(string root)
    {
        var defaults = Values.Defaults;
        var path = Path.Combine(root, FileName);
        if (!File.Exists(path))
        {
            return defaults;
        }

        var proxy = JsonNode.Parse(File.ReadAllText(path))?["TrustedProxy"];
        double Get(string section, string name, double fallback) =>
            proxy?[section]?[name] is JsonValue value && value.TryGetValue<double>(out var number) ? number : fallback;
        return new(
            Get("ObliviousRetrieval", nameof(ObliviousRetrievalOptions.DeclaredRetrievalsPerDay), defaults.RetrievalsPerDay),
            Get("ObliviousRetrieval", nameof(ObliviousRetrievalOptions.DeclaredRetrievalMegabytes), defaults.RetrievalMegabytes),
            Get("UploadCache", nameof(UploadCacheOptions.DeclaredUploadsPerDay), defaults.UploadsPerDay),
            Get("UploadCache", nameof(UploadCacheOptions.DeclaredUploadMegabytes), defaults.UploadMegabytes));
    }

    /// <summary>Writes the declaration under <paramref name="root"/> (replacing an earlier one).</summary>
    public static string Write(string root, Values load)
    {
        var path = Path.Combine(root, FileName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var document = new JsonObject
        {
            ["TrustedProxy"] = new JsonObject
            {
                ["ObliviousRetrieval"] = new JsonObject
                {
                    [nameof(ObliviousRetrievalOptions.DeclaredRetrievalsPerDay)] = load.RetrievalsPerDay,
                    [nameof(ObliviousRetrievalOptions.DeclaredRetrievalMegabytes)] = load.RetrievalMegabytes,
                },
                ["UploadCache"] = new JsonObject
                {
                    [nameof(UploadCacheOptions.DeclaredUploadsPerDay)] = load.UploadsPerDay,
                    [nameof(UploadCacheOptions.DeclaredUploadMegabytes)] = load.UploadMegabytes,
                },
            },
        };
        File.WriteAllText(path, document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return path;
    }

    /// <summary>
    /// What reading from the cloud costs at that load with the other defaults, in one line: the
    /// requests' own bytes padded to their size class, as much again of cover, and the idle floor
    /// the cover model settles to when nobody asks (docs/benchmarks.md, "read-cost").
    /// </summary>
    public static string Cost(double retrievalsPerDay, double retrievalMegabytes)
    {
        var options = new ObliviousRetrievalOptions();
        var wanted = retrievalsPerDay * retrievalMegabytes / 1000;
        var read = wanted * (1 + options.CoverPerWanted) * 1.1;
        return string.Create(CultureInfo.InvariantCulture, $"declared {retrievalsPerDay:0.##} retrievals of {retrievalMegabytes:0.##} MB a day: about {wanted:0.#} GB wanted and {read:0.#} GB read from the cloud a day at that load (requests padded to their size class, and as much cover); {options.IdleFloorGigabytesPerDay:0.#} GB a day once nobody has asked for weeks");
    }

    /// <summary>What writing to the cloud costs at that declared write load with the other defaults (the server's start-up says the same, event 4007).</summary>
    public static string WriteCost(double uploadsPerDay, double uploadMegabytes) =>
        SlotRate.Cost(SlotRate.Apply(new UploadCacheOptions { DeclaredUploadsPerDay = uploadsPerDay, DeclaredUploadMegabytes = uploadMegabytes }, rateConfigured: false, thresholdConfigured: false, backup: true), rateConfigured: false, backup: true);
}
