using Microsoft.Extensions.Logging;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Records;

/// <summary>
/// Run once at start-up, before the server accepts requests, to finish what a crash interrupted:
/// write-through records whose ciphertext is on disk are sent to the backend (or handed to the
/// cache when it is on); records without it were never acknowledged and are removed with any block
/// already put; the upload cache takes its waiting blocks back; cache files with no record are dropped.
/// </summary>
internal sealed partial class RecordRecovery(RecordIndex index, StagingArea staging, RecordUploader uploader, UploadCacheEngine cache, ILogger<RecordRecovery> logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        foreach (var entry in await index.InStateAsync(RecordState.Staged).ConfigureAwait(false))
        {
            if (!File.Exists(staging.PathOf(entry.Handle)))
            {
                await uploader.TakeBackAsync(entry).ConfigureAwait(false);
                LogDropped(logger, entry.Handle);
            }
            else if (cache.Enabled)
            {
                await index.TransitionAsync(entry.Handle, RecordState.Staged, RecordState.Cached).ConfigureAwait(false);
            }
            else
            {
                await uploader.CompleteAsync(entry, cancellationToken).ConfigureAwait(false);
                LogResumed(logger, entry.Handle);
            }
        }

        foreach (var entry in await index.InStateAsync(RecordState.Deleting).ConfigureAwait(false))
        {
            await uploader.TakeBackAsync(entry, alreadyHidden: true).ConfigureAwait(false);
        }

        await cache.RecoverAsync(cancellationToken).ConfigureAwait(false);

        var cached = (await index.InStateAsync(RecordState.Cached).ConfigureAwait(false)).Select(e => e.Handle)
            .Concat((await index.InStateAsync(RecordState.Staged).ConfigureAwait(false)).Select(e => e.Handle))
            .ToHashSet();
        foreach (var handle in staging.StagedHandles().ToList())
        {
            if (!cached.Contains(handle))
            {
                staging.Delete(handle);
            }
        }
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Recovery: staged record {Handle} sent to the backend")]
    private static partial void LogResumed(ILogger logger, string handle);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Recovery: staged record {Handle} had lost its ciphertext before acknowledgement and was removed")]
    private static partial void LogDropped(ILogger logger, string handle);
}
