using Microsoft.Extensions.Logging;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>
/// Run once at start-up, before the server accepts requests, to finish what a crash interrupted:
/// staged records whose ciphertext is on disk are sent to the backend; staged records without it
/// were never acknowledged and are removed (with any object already put); interrupted deletions are
/// completed; staging files with no index row are dropped.
/// </summary>
internal sealed partial class RecordRecovery(RecordIndex index, IObjectStore store, StagingArea staging, RecordUploader uploader, RecordDeleter deleter, ILogger<RecordRecovery> logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var staged = await index.InStateAsync(RecordState.Staged).ConfigureAwait(false);
        foreach (var entry in staged)
        {
            if (File.Exists(staging.PathOf(entry.Handle)))
            {
                await uploader.CompleteAsync(entry, cancellationToken).ConfigureAwait(false);
                LogResumed(logger, entry.Handle);
            }
            else
            {
                await store.DeleteAsync(entry.ObjectName, cancellationToken).ConfigureAwait(false);
                await index.DeleteAsync(entry.Handle).ConfigureAwait(false);
                LogDropped(logger, entry.Handle);
            }
        }

        foreach (var entry in await index.InStateAsync(RecordState.Deleting).ConfigureAwait(false))
        {
            await deleter.FinishAsync(entry, cancellationToken).ConfigureAwait(false);
        }

        var known = staged.Select(e => e.Handle).ToHashSet();
        foreach (var handle in staging.StagedHandles().ToList())
        {
            if (!known.Contains(handle))
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
