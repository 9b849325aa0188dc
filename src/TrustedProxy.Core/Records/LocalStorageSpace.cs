using TrustedProxy.IO;

namespace TrustedProxy.Records;

/// <summary>
/// An upload refused because the proxy's local disk (the staging area, the index) is full. Nothing
/// of it was kept; the client may send it again later.
/// </summary>
public sealed class InsufficientStorageException(Exception inner)
    : Exception("the proxy's local disk is full; nothing of the upload was kept", inner);

/// <summary>
/// Whether the local disk ran out of space under an upload, and whether it still lacks it: readiness
/// is degraded from the first refused upload until the file system has room again for at least
/// what that upload had written when it failed (an operator freed space). A later small upload
/// that fits does not end it: the disk is still too full for the one that did not.
/// </summary>
internal sealed class LocalStorageSpace(StagingArea staging, TimeProvider time)
{
    // Below this the free space moves with every small write (the logs, the index's pages); an end
    // declared on such noise would flap.
    private const long Margin = 1 << 20;

    private Shortage? _shortage;

    /// <summary>When the disk was found full, what was free then, and what the refused upload had written.</summary>
    public sealed record Shortage(DateTimeOffset Since, long FreeBytes, long NeededBytes);

    public long FreeBytes => new DriveInfo(staging.Directory).AvailableFreeSpace;

    /// <summary>Records a write refused for want of space; <paramref name="writtenBytes"/> is what it had written before.</summary>
    public InsufficientStorageException Refused(Exception cause, long writtenBytes)
    {
        _shortage = new Shortage(time.GetUtcNow(), FreeBytes, writtenBytes);
        return new InsufficientStorageException(cause);
    }

    /// <summary>The shortage still in force, or null (none, or the disk has room again).</summary>
    public Shortage? Current()
    {
        if (_shortage is { } shortage && FreeBytes >= shortage.FreeBytes + Math.Max(shortage.NeededBytes, Margin))
        {
            Interlocked.CompareExchange(ref _shortage, null, shortage);
        }

        return _shortage;
    }

    public static bool IsFull(Exception exception) => DiskFull.Is(exception);
}
