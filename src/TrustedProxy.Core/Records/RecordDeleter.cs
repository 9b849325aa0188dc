using Microsoft.Extensions.Logging;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>
/// Removes a record: first hidden from every answer (state Deleting), then the cloud object, then
/// the index row. A crash in between is finished by recovery at the next start.
/// </summary>
internal sealed partial class RecordDeleter(RecordIndex index, IObjectStore store, StagingArea staging, ILogger<RecordDeleter> logger)
{
    /// <summary>Deletes a stored record; false if there is no such stored record.</summary>
    public async Task<bool> DeleteAsync(string handle, CancellationToken cancellationToken)
    {
        if (!await index.TransitionAsync(handle, RecordState.Stored, RecordState.Deleting).ConfigureAwait(false))
        {
            return false;
        }

        var entry = await index.FindAsync(handle).ConfigureAwait(false);
        if (entry is not null)
        {
            await FinishAsync(entry, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    public async Task FinishAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        await store.DeleteAsync(entry.ObjectName, cancellationToken).ConfigureAwait(false);
        staging.Delete(entry.Handle);
        await index.DeleteAsync(entry.Handle).ConfigureAwait(false);
        LogDeleted(logger, entry.Handle);
    }

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Record {Handle} deleted from the index and the backend")]
    private static partial void LogDeleted(ILogger logger, string handle);
}
