using TrustedProxy.Audit;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Records;

/// <summary>
/// Removes a record: gone from every answer at once; what reached the backend is removed later,
/// at random times (see <see cref="UploadCacheEngine.DeleteRecordAsync"/>), so that a deletion does
/// not show the cloud which objects belonged together. The deletion is in the audit log first.
/// </summary>
internal sealed class RecordDeleter(UploadCacheEngine cache, RecordIndex index, AuditLog audit)
{
    /// <summary>Deletes an acknowledged record; false if there is no such record.</summary>
    public async Task<bool> DeleteAsync(string handle, CancellationToken cancellationToken)
    {
        if (await index.FindAsync(handle).ConfigureAwait(false) is not { } entry)
        {
            return false;
        }

        await audit.AppendAsync(AuditEvents.Delete(entry)).ConfigureAwait(false);
        return await cache.DeleteRecordAsync(handle, cancellationToken).ConfigureAwait(false);
    }
}
