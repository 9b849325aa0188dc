using Microsoft.Extensions.Logging;
using TrustedProxy.Crypto;
using TrustedProxy.IO;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>
/// Relocation after a cloud read, off the request path. The read hands over the record's verified
/// ciphertext; it is written (and made durable) to the queue directory under the record's handle and
/// its object name, and the request goes on at once. A background loop relocates queued records one
/// at a time (<see cref="RecordRelocator"/>) and removes each file afterwards. Until then the queued
/// file serves the record, so a second read never goes back to the cloud's old objects, and a crash
/// anywhere in between loses nothing: the record is still whole at its old place, and the file is
/// relocated at the next start. Only ciphertext reaches the disk.
/// </summary>
internal sealed partial class RelocationQueue(RecordIndex index, RecordRelocator relocator, ProxyKeyRing keys, StagingArea staging, ILogger<RelocationQueue> logger)
{
    private const string Extension = ".tpx";
    private readonly SemaphoreSlim _signal = new(0);

    private string Directory { get; } = EnsureDirectory(Path.Combine(staging.Directory, "relocations"));

    /// <summary>Records waiting for their relocation.</summary>
    public int Waiting => System.IO.Directory.EnumerateFiles(Directory, "*" + Extension).Count();

    /// <summary>
    /// Queues the record's relocation; <paramref name="ciphertext"/> is its verified stored form (left
    /// at position 0). A failure to queue (a full disk) costs the relocation, never the read.
    /// </summary>
    public async Task EnqueueAsync(RecordEntry entry, Stream ciphertext, CancellationToken cancellationToken)
    {
        var path = PathOf(entry.Handle, entry.ObjectName);
        var partial = path + ".part";
        try
        {
            ciphertext.Position = 0;
            await using (var file = new FileStream(partial, SecretFile.OwnerOnlyOptions(FileMode.Create, FileAccess.Write, FileOptions.Asynchronous)))
            {
                await ciphertext.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(partial, path, overwrite: true);
            Durability.SyncDirectory(Directory);
            _signal.Release();
        }
        catch (IOException ex)
        {
            File.Delete(partial);
            LogNotQueued(logger, entry.Handle, ex.GetType().Name);
        }
        finally
        {
            ciphertext.Position = 0;
        }
    }

    /// <summary>Whether this version of the record waits here (and is served from here, never from its old objects).</summary>
    public bool IsQueued(RecordEntry entry) => File.Exists(PathOf(entry.Handle, entry.ObjectName));

    /// <summary>The queued ciphertext of this version of the record, if its relocation still waits.</summary>
    public FileStream? OpenQueued(RecordEntry entry)
    {
        try
        {
            return new FileStream(PathOf(entry.Handle, entry.ObjectName), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Relocates what waits (first what a crash left), then each record as it is queued, until stopped.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        foreach (var partial in System.IO.Directory.EnumerateFiles(Directory, "*.part"))
        {
            File.Delete(partial);
        }

        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await DrainAsync(cancellationToken).ConfigureAwait(false);
                await _signal.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Relocates every queued record once (the loop's step; tests call it directly).</summary>
    internal async Task DrainAsync(CancellationToken cancellationToken)
    {
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*" + Extension).ToList())
        {
            var (handle, objectName) = Parse(Path.GetFileNameWithoutExtension(path));
            try
            {
                var entry = await index.FindAsync(handle).ConfigureAwait(false);

                // Deleted, or moved on (a newer copy) since it was queued: nothing to do.
                if (entry is { State: RecordState.Stored } && entry.ObjectName == objectName && relocator.CanRelocate)
                {
                    using var dataKey = keys.KeyEncryptionKeys.Unwrap(entry.WrappedKey, entry.Handle);
                    await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
                    await relocator.RelocateAsync(entry, file, dataKey, cancellationToken).ConfigureAwait(false);
                }

                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or EnvelopeIntegrityException)
            {
                // Left queued (it still serves the record); tried again at the next read or start.
                LogFailed(logger, handle, ex.GetType().Name);
            }
        }
    }

    private string PathOf(string handle, ObjectName objectName) => Path.Combine(Directory, $"{handle}.{objectName}{Extension}");

    private static (string Handle, ObjectName ObjectName) Parse(string stem)
    {
        var dot = stem.LastIndexOf('.');
        return (stem[..dot], ObjectName.Parse(stem[(dot + 1)..]));
    }

    private static string EnsureDirectory(string directory)
    {
        SecretFile.EnsurePrivateDirectory(directory);
        return directory;
    }

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "Record {Handle} was read from the cloud but its relocation could not be queued ({Error}); it stays where it is")]
    private static partial void LogNotQueued(ILogger logger, string handle, string error);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Warning, Message = "The queued relocation of record {Handle} failed ({Error}); it is tried again")]
    private static partial void LogFailed(ILogger logger, string handle, string error);
}
