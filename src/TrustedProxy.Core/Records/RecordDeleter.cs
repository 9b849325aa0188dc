using TrustedProxy.UploadCache;

namespace TrustedProxy.Records;

/// <summary>
/// Removes a record: gone from every answer at once; what reached the backend is removed later,
/// at random times (see <see cref="UploadCacheEngine.DeleteRecordAsync"/>), so that a deletion does
/// not show the cloud which objects belonged together.
/// </summary>
internal sealed class RecordDeleter(UploadCacheEngine cache)
{
    /// <summary>Deletes an acknowledged record; false if there is no such record.</summary>
    public Task<bool> DeleteAsync(string handle, CancellationToken cancellationToken) => cache.DeleteRecordAsync(handle, cancellationToken);
}
