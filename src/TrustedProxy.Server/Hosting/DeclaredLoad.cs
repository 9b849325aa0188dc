using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// The load a site declares at <c>tproxy init</c>: how many retrievals a day, of what size. The
/// read schedule's cover model starts from it (docs/oblivious-retrieval.md); it is kept in
/// <see cref="FileName"/> under the proxy's directory, which the server reads over
/// <c>config/appsettings.json</c> and under the environment.
/// </summary>
public static class DeclaredLoad
{
    public const string FileName = "config/declared-load.json";

    /// <summary>Checks the declaration: a list of what is wrong, empty when it can be kept.</summary>
    public static IReadOnlyList<string> Validate(double retrievalsPerDay, double retrievalMegabytes)
    {
        var errors = new List<string>();
        if (!(retrievalsPerDay is >= 0 and <= 1_000_000))
        {
            errors.Add("--retrievals-per-day must be between 0 and 1,000,000");
        }

        if (!(retrievalMegabytes is >= 0.01 and <= 1_000_000))
        {
            errors.Add("--retrieval-megabytes must be between 0.01 and 1,000,000");
        }

        return errors;
    }

    /// <summary>Writes the declaration under <paramref name="root"/> (replacing an earlier one).</summary>
    public static string Write(string root, double retrievalsPerDay, double retrievalMegabytes)
    {
        var path = Path.Combine(root, FileName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var document = new JsonObject
        {
            ["TrustedProxy"] = new JsonObject
            {
                ["ObliviousRetrieval"] = new JsonObject
                {
                    [nameof(ObliviousRetrievalOptions.DeclaredRetrievalsPerDay)] = retrievalsPerDay,
                    [nameof(ObliviousRetrievalOptions.DeclaredRetrievalMegabytes)] = retrievalMegabytes,
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
}
