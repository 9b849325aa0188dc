using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Backup;

/// <summary>The backup's composition: its keys, the snapshot taker, the generation writer, the shipper and (when enabled) its place in the dummy slots.</summary>
internal static class BackupServiceCollectionExtensions
{
    public static IServiceCollection AddBackup(this IServiceCollection services, BackupOptions options, string dataDirectory, string certsDirectory, int blockSize, TimeSpan auditLockTimeout)
    {
        services.AddSingleton(Options.Create(options));
        services.AddSingleton(sp => BackupKeys.From(sp.GetRequiredService<ProxyKeyRing>()));
        services.AddSingleton(sp =>
        {
            var keys = sp.GetRequiredService<BackupKeys>();
            return new BackupShipper(
                Path.Combine(dataDirectory, "backup"),
                new BackupSnapshotTaker(dataDirectory, certsDirectory, auditLockTimeout),
                new BackupGenerationWriter(new BackupObjectSealer(keys, blockSize)),
                sp.GetRequiredService<IOptions<BackupOptions>>(),
                blockSize,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IMeterFactory>(),
                sp.GetRequiredService<ILogger<BackupShipper>>())
            {
                NameOf = keys.NameOf,
            };
        });
        if (options.Enabled)
        {
            services.AddSingleton<ICoverPayloadSource>(sp => sp.GetRequiredService<BackupShipper>());
        }

        return services;
    }

    /// <summary>
    /// The backup as it will run: on by default wherever the upload cache can carry it (so that an
    /// acknowledged upload survives the loss of the proxy's disk), off where it cannot and
    /// configuration did not ask for it (write-through, another padding, dummies that expire). Set
    /// explicitly, <see cref="BackupOptions.Enabled"/> is kept, and <see cref="Validate"/> refuses a
    /// configuration it cannot run with.
    /// </summary>
    public static BackupOptions Resolve(BackupOptions backup, UploadCacheOptions cache, bool enabledConfigured) =>
        enabledConfigured || !backup.Enabled || !Unmet(cache).Any() ? backup : backup with { Enabled = false, OffBecause = Unmet(cache).First() };

    /// <summary>What the backup needs of the upload cache: dummy slots of the backup's block size, and dummies kept for good (a backup object is one).</summary>
    public static IEnumerable<string> Validate(BackupOptions backup, UploadCacheOptions cache)
    {
        foreach (var error in backup.Validate())
        {
            yield return error;
        }

        if (!backup.Enabled)
        {
            yield break;
        }

        foreach (var unmet in Unmet(cache))
        {
            yield return $"TrustedProxy:Backup:Enabled needs {unmet}";
        }
    }

    private static IEnumerable<string> Unmet(UploadCacheOptions cache)
    {
        if (!cache.Enabled)
        {
            yield return "the upload cache (TrustedProxy:UploadCache:Enabled): backup objects travel only in its dummy slots";
        }

        if (cache.Padding != FixedBlockPadding.SchemeName)
        {
            yield return $"TrustedProxy:UploadCache:Padding '{FixedBlockPadding.SchemeName}': a backup object is one block, like every dummy";
        }

        if (cache.MeanDummyLifetimeSeconds > 0)
        {
            yield return "dummies kept for good (TrustedProxy:UploadCache:MeanDummyLifetimeSeconds 0): a backup object lives as a dummy and would expire with them";
        }
    }
}
