using System.Runtime.InteropServices;

namespace TrustedProxy.IO;

/// <summary>
/// What it takes on Linux for a write to survive a crash or a power cut beyond the file's own
/// fsync (which <see cref="FileStream.Flush(bool)"/> does): the directory entry of a new or renamed
/// file is durable only once the directory itself is fsync'd.
/// </summary>
internal static class Durability
{
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = NativeMethods.open(directory, NativeMethods.ReadOnlyDirectory);
        if (fd < 0)
        {
            throw new IOException($"cannot open the directory '{directory}' to sync it: {NativeMethods.LastError()}");
        }

        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                throw new IOException($"fsync of the directory '{directory}' failed: {NativeMethods.LastError()}");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }
}

/// <summary>
/// One directory's fsync shared by everyone who needs it at about the same time (group commit):
/// a caller gets a sync that starts after it asked, so the entries it created before asking are
/// covered; callers who ask while a sync runs share the next one. With one caller at a time it is
/// a plain fsync on the caller's thread.
/// </summary>
internal sealed class SharedDirectorySync(string directory)
{
    private readonly Lock _gate = new();
    private Task _last = Task.CompletedTask;
    private Task? _waiting;

    public string Directory { get; } = directory;

    public Task SyncAsync()
    {
        Task previous;
        TaskCompletionSource next;
        lock (_gate)
        {
            // A sync not yet started covers whatever its joiners did before joining.
            if (_waiting is { } joined)
            {
                return joined;
            }

            previous = _last;
            next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting = _last = next.Task;
        }

        _ = RunAfterAsync(previous, next);
        return next.Task;
    }

    private async Task RunAfterAsync(Task previous, TaskCompletionSource next)
    {
        // The previous sync's failure is its callers' to see; this one is tried on its own.
        await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_gate)
        {
            // From here on the sync may have begun: a later caller waits for another.
            _waiting = null;
        }

        try
        {
            Durability.SyncDirectory(Directory);
            next.SetResult();
        }
        catch (Exception ex)
        {
            next.SetException(ex);
        }
    }
}

/// <summary>
/// An exclusive advisory lock (flock) on a lock file, held across processes: the server and the
/// command line both append to the audit log, and only one may do so at a time. The lock file is
/// opened with open(2) directly, not through <see cref="FileStream"/>, because .NET takes its own
/// shared flock on files it opens, which would conflict with this one.
/// </summary>
internal sealed class ExclusiveFileLock : IDisposable
{
    private static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(2);
    private int _fd;

    private ExclusiveFileLock(int fd) => _fd = fd;

    /// <summary>Takes the lock, waiting at most <paramref name="timeout"/> for another holder to let go.</summary>
    public static ExclusiveFileLock Acquire(string path, TimeSpan timeout)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("the audit log's cross-process lock needs Linux (flock)");
        }

        var fd = NativeMethods.open(path, NativeMethods.ReadWriteCreate, NativeMethods.OwnerReadWrite);
        if (fd < 0)
        {
            throw new IOException($"cannot open the lock file '{path}': {NativeMethods.LastError()}");
        }

        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (NativeMethods.flock(fd, NativeMethods.LockExclusive | NativeMethods.LockNonBlocking) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != NativeMethods.WouldBlock || Environment.TickCount64 >= deadline)
            {
                _ = NativeMethods.close(fd);
                throw new IOException(errno == NativeMethods.WouldBlock
                    ? $"another process has held the lock '{path}' for more than {timeout.TotalSeconds:0.#} s"
                    : $"cannot lock '{path}': {Marshal.GetPInvokeErrorMessage(errno)}");
            }

            Thread.Sleep(RetryInterval);
        }

        return new ExclusiveFileLock(fd);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            // Closing the descriptor releases the flock.
            _ = NativeMethods.close(fd);
        }
    }
}

internal static partial class NativeMethods
{
    public const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY
    public const int ReadWriteCreate = 0x2 | 0x40 | 0x80000; // O_RDWR | O_CREAT | O_CLOEXEC
    public const int OwnerReadWrite = 0x180; // 0600
    public const int LockExclusive = 2; // LOCK_EX
    public const int LockNonBlocking = 4; // LOCK_NB
    public const int WouldBlock = 11; // EWOULDBLOCK

    public static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());

#pragma warning disable SA1300, IDE1006 // libc names
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int flock(int fd, int operation);

    [LibraryImport("libc")]
    internal static partial int close(int fd);
#pragma warning restore SA1300, IDE1006
}
