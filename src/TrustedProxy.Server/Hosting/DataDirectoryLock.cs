namespace TrustedProxy.Server.Hosting;

/// <summary>
/// The one-proxy-per-data-directory lock: <c>data/.lock</c> opened with no sharing and held until
/// the server is disposed. Two proxies on one directory would each run recovery over the other's
/// staging files, index and audit log; the second is refused before it touches any of them. The
/// lock is the kernel's (flock on Unix), so a proxy killed with SIGKILL leaves nothing to clean up.
/// </summary>
internal sealed class DataDirectoryLock : IDisposable
{
    public const string FileName = ".lock";

    private readonly FileStream _file;

    private DataDirectoryLock(FileStream file) => _file = file;

    /// <summary>Takes the lock, or throws <see cref="DataDirectoryInUseException"/> at once if another process (or server) holds it.</summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, FileName);
        try
        {
            return new DataDirectoryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new DataDirectoryInUseException(dataDirectory, ex);
        }
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>Another proxy is serving the same data directory.</summary>
public sealed class DataDirectoryInUseException(string dataDirectory, Exception inner)
    : IOException($"the data directory '{dataDirectory}' is in use by another tproxy serve (it holds {Path.Combine(dataDirectory, DataDirectoryLock.FileName)}); stop it first", inner);

/// <summary>Releases a resource unless <see cref="Keep"/> was called: for what start-up holds only if it succeeds.</summary>
internal sealed class ReleasedOnFailure(IDisposable resource) : IDisposable
{
    private bool _kept;

    public void Keep() => _kept = true;

    public void Dispose()
    {
        if (!_kept)
        {
            resource.Dispose();
        }
    }
}
