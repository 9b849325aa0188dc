using System.Globalization;

namespace TrustedProxy.UploadCache;

/// <summary>
/// The constant-rate schedule's slot rate from the write load a site declares (docs/upload-cache.md,
/// "Sizing"): μ = max(<see cref="MinSlotsPerSecond"/>, h × D / (B × 86,400)), h = <see cref="Headroom"/>
/// (plus <see cref="BackupHeadroom"/> when the backup rides the dummy slots), D the declared bytes a
/// day (uploads a day × megabytes each), B the block size; and the pool
/// threshold k = μ × <see cref="MeanResidenceSeconds"/>, so that a block waits 2 h on average at
/// any rate, as in the configuration measured in docs/privacy.md. The rate follows a declared,
/// long-run figure, never the live load: what the cloud sees still does not depend on what the
/// hospitals do.
/// </summary>
public static class SlotRate
{
    /// <summary>
    /// Slots per declared block: padding (about 13 % at 128 KiB for CT-sized instances), the afternoon
    /// peak (about 1.6 times the daily mean) and a margin, so that the pool stays below k and blocks
    /// leave at random rather than at max hold, oldest first.
    /// </summary>
    public const double Headroom = 3;

    /// <summary>
    /// Slots per declared block for the backup (issue 14), which ships each waiting upload's
    /// ciphertext once more, plus index pages, in dummy slots only: measured, it keeps up when μ is
    /// about four times the real block rate (docs/benchmarks.md, "Backup recovery point").
    /// </summary>
    public const double BackupHeadroom = 1;

    /// <summary>The floor (one block every 20 s on average, 0.57 GB a day at 128 KiB): a site that declares no uploads still releases within hours.</summary>
    public const double MinSlotsPerSecond = 0.05;

    /// <summary>The mean residence R = k/μ of the measured defaults (28,800 / 4 = 2 h).</summary>
    public const double MeanResidenceSeconds = 7200;

    private const double SecondsPerDay = 86_400;

    /// <summary>μ for a declared load, before the configured bound of 100,000 slots/s is checked.</summary>
    public static double Derive(double uploadsPerDay, double uploadMegabytes, int blockSizeBytes, bool backup) =>
        Math.Max(MinSlotsPerSecond, HeadroomFor(backup) * uploadsPerDay * uploadMegabytes * 1e6 / blockSizeBytes / SecondsPerDay);

    /// <summary>Slots per declared block: <see cref="Headroom"/>, plus <see cref="BackupHeadroom"/> with the backup on.</summary>
    public static double HeadroomFor(bool backup) => Headroom + (backup ? BackupHeadroom : 0);

    /// <summary>The pool threshold that keeps the mean residence at <see cref="MeanResidenceSeconds"/>.</summary>
    public static int PoolThresholdFor(double slotsPerSecond) => (int)Math.Clamp(Math.Round(slotsPerSecond * MeanResidenceSeconds), 1, int.MaxValue);

    /// <summary>
    /// The options the cache runs with: the declared load's rate and threshold, unless configuration
    /// sets <see cref="UploadCacheOptions.SlotsPerSecond"/> (then both stay as configured: an
    /// explicit rate wins) or <see cref="UploadCacheOptions.PoolThreshold"/> (kept, with the derived rate).
    /// </summary>
    public static UploadCacheOptions Apply(UploadCacheOptions options, bool rateConfigured, bool thresholdConfigured, bool backup)
    {
        if (rateConfigured)
        {
            return options;
        }

        var rate = Derive(options.DeclaredUploadsPerDay, options.DeclaredUploadMegabytes, options.BlockSizeBytes, backup);
        return options with { SlotsPerSecond = rate, PoolThreshold = thresholdConfigured ? options.PoolThreshold : PoolThresholdFor(rate) };
    }

    /// <summary>What <paramref name="slotsPerSecond"/> writes of <paramref name="blockSizeBytes"/> store in a day, in GB (10⁹ bytes).</summary>
    public static double GigabytesPerDay(double slotsPerSecond, int blockSizeBytes) => slotsPerSecond * blockSizeBytes * SecondsPerDay / 1e9;

    /// <summary>Errors in a declared write load (empty when it can be kept), named as <c>tproxy init</c>'s flags.</summary>
    public static IReadOnlyList<string> Validate(double uploadsPerDay, double uploadMegabytes, int blockSizeBytes, bool backup)
    {
        var errors = new List<string>();
        if (!(uploadsPerDay is >= 0 and <= 10_000_000))
        {
            errors.Add("--uploads-per-day must be between 0 and 10,000,000");
        }

        if (!(uploadMegabytes is >= 0.01 and <= 1_000_000))
        {
            errors.Add("--upload-megabytes must be between 0.01 and 1,000,000");
        }

        if (errors.Count == 0 && Derive(uploadsPerDay, uploadMegabytes, blockSizeBytes, backup) > UploadCacheOptions.MaxSlotsPerSecond)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"a declared write load of {uploadsPerDay * uploadMegabytes / 1000:0.#} GB a day needs more than {UploadCacheOptions.MaxSlotsPerSecond:N0} slots/s of {blockSizeBytes / 1024} KiB; declare less or raise TrustedProxy:UploadCache:BlockSizeBytes"));
        }

        return errors;
    }

    /// <summary>
    /// What writing to the cloud costs a day with these (resolved) options, in one line: for
    /// <c>constant-rate</c> the slot rate times the block size whatever the load, of which the
    /// declared uploads' own bytes; otherwise what the schedule adds to the uploads.
    /// </summary>
    public static string Cost(UploadCacheOptions options, bool rateConfigured, bool backup)
    {
        var kib = options.BlockSizeBytes / 1024;
        if (!options.Enabled)
        {
            return "write-through (upload cache off): the cloud receives each upload's blocks as it arrives, nothing more; the timing shows the uploads";
        }

        if (options.Schedule != ConstantRateSchedule.ScheduleName)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{options.Schedule}: the uploads' own blocks plus {options.CoverPerSecond:0.###} dummy writes/s of {kib} KiB, {GigabytesPerDay(options.CoverPerSecond, options.BlockSizeBytes):0.##} GB a day of cover kept in the cloud");
        }

        var origin = rateConfigured
            ? "set by TrustedProxy:UploadCache:SlotsPerSecond"
            : string.Create(CultureInfo.InvariantCulture, $"from the declared {options.DeclaredUploadsPerDay:0.##} uploads of {options.DeclaredUploadMegabytes:0.##} MB a day, {options.DeclaredUploadsPerDay * options.DeclaredUploadMegabytes / 1000:0.##} GB, times {HeadroomFor(backup):0.#}{(backup ? $" ({Headroom:0.#} for the uploads and their cover, {BackupHeadroom:0.#} for the backup)" : "")}");
        var perDay = GigabytesPerDay(options.SlotsPerSecond, options.BlockSizeBytes);
        return string.Create(CultureInfo.InvariantCulture, $"{perDay:0.##} GB a day written to the cloud and kept, {perDay * 365 / 1000:0.##} TB a year, whatever the load: {options.SlotsPerSecond:0.###} writes/s of {kib} KiB, real or dummy ({origin}); a block waits {options.PoolThreshold / options.SlotsPerSecond / 60:0} min on average");
    }
}
