using TrustedProxy.Crypto;
using TrustedProxy.IO;

namespace TrustedProxy.Records;

/// <summary>
/// Local disk where a record's ciphertext waits between the upload and the backend, and where a
/// fetched object is verified before a single plaintext byte is sent. Only ciphertext is ever
/// written here. Files are named by record handle so that recovery after a crash can find them.
/// </summary>
internal sealed class StagingArea
{
    private const string Extension = ".tpx";

    public StagingArea(string directory)
    {
        Directory = Path.GetFullPath(directory);
        SecretFile.EnsurePrivateDirectory(Directory);
        _directorySync = new SharedDirectorySync(Directory);
        ScratchDirectory = Path.Combine(Directory, "scratch");
        SecretFile.EnsurePrivateDirectory(ScratchDirectory);
        foreach (var leftover in System.IO.Directory.EnumerateFiles(ScratchDirectory))
        {
            File.Delete(leftover);
        }
    }

    private readonly SharedDirectorySync _directorySync;

    public string Directory { get; }

    private string ScratchDirectory { get; }

    public string PathOf(string handle) => Path.Combine(Directory, handle + Extension);

    public FileStream Create(string handle) =>
        new(PathOf(handle), SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.Asynchronous, FileShare.Read));

    public FileStream? OpenRead(string handle) =>
        File.Exists(PathOf(handle)) ? new FileStream(PathOf(handle), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous) : null;

    public void Delete(string handle) => File.Delete(PathOf(handle));

    /// <summary>How much of a cache file is on disk (0 if none): what a write had got to when it failed.</summary>
    public long LengthOf(string handle) => new FileInfo(PathOf(handle)) is { Exists: true } file ? file.Length : 0;

    /// <summary>
    /// Makes a cache file durable before it is acknowledged: its bytes (fsync) and its directory
    /// entry (fsync of the directory), so that neither a crash nor a power cut loses it.
    /// </summary>
    public void Persist(FileStream file)
    {
        file.Flush(flushToDisk: true);
        Durability.SyncDirectory(Directory);
    }

    /// <summary>
    /// <see cref="Persist"/> for uploads arriving together: the file's own fsync, then one fsync of
    /// the directory shared by every upload that asks while another is under way.
    /// </summary>
    public Task PersistAsync(FileStream file)
    {
        file.Flush(flushToDisk: true);
        return _directorySync.SyncAsync();
    }

    public IEnumerable<string> StagedHandles() =>
        System.IO.Directory.EnumerateFiles(Directory, "*" + Extension).Select(p => Path.GetFileNameWithoutExtension(p));

    /// <summary>A scratch file that deletes itself when closed (or when the process dies and the directory is swept).</summary>
    public FileStream CreateScratch() =>
        new(Path.Combine(ScratchDirectory, Guid.NewGuid().ToString("N")), SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.Asynchronous | FileOptions.DeleteOnClose));
}
