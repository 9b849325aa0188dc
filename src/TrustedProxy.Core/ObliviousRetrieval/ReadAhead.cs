using Microsoft.Win32.SafeHandles;
using TrustedProxy.Crypto;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>A block read for a retrieval and not yet taken: in memory, or in a read-ahead file on disk.</summary>
internal sealed class HeldBlock
{
    private readonly byte[]? _bytes;
    private readonly ReadAheadFile? _file;
    private readonly long _offset;

    public HeldBlock(byte[] bytes)
    {
        _bytes = bytes;
        Length = bytes.Length;
    }

    public HeldBlock(ReadAheadFile file, long offset, int length)
    {
        _file = file;
        _offset = offset;
        Length = length;
    }

    public int Length { get; }

    public bool InMemory => _bytes is not null;

    internal ReadAheadFile? File => _file;

    public async ValueTask<byte[]> GetAsync(CancellationToken cancellationToken) =>
        _bytes ?? await _file!.ReadAsync(_offset, Length, cancellationToken).ConfigureAwait(false);
}

/// <summary>
/// Keeps what the read streams bring for retrievals until their readers take it. A stream runs at
/// the schedule's pace, never the client's (slowing it for a slow client would show the cloud whose
/// stream it is), so a slow client of a large study would otherwise make the proxy hold the study.
/// Up to a budget the bytes stay in memory; beyond it they go to read-ahead files in the staging
/// area's scratch directory, which delete themselves when closed and are swept at start-up. They
/// are the objects as the envelope encrypted them (unmasked, still ciphertext), so nothing readable
/// reaches the disk.
/// </summary>
internal sealed class ReadAhead(long memoryBytes, string? directory) : IDisposable
{
    /// <summary>A read-ahead file takes this much before the next one starts, so that a file is let go soon after its blocks are taken.</summary>
    private const long FileBytes = 256L << 20;

    private readonly Lock _gate = new();
    private readonly List<ReadAheadFile> _files = [];
    private ReadAheadFile? _current;
    private long _inMemory;

    /// <summary>Bytes held in memory now.</summary>
    public long InMemoryBytes
    {
        get
        {
            lock (_gate)
            {
                return _inMemory;
            }
        }
    }

    /// <summary>Read-ahead files open now.</summary>
    public int Files
    {
        get
        {
            lock (_gate)
            {
                return _files.Count;
            }
        }
    }

    /// <summary>
    /// Holds a block: in memory while under the budget, or when a reader waits for it this moment
    /// (it is taken at once); on disk otherwise.
    /// </summary>
    public async Task<HeldBlock> HoldAsync(byte[] bytes, bool awaited, CancellationToken cancellationToken)
    {
        ReadAheadFile file;
        long offset;
        lock (_gate)
        {
            if (awaited || directory is null || _inMemory + bytes.Length <= memoryBytes)
            {
                _inMemory += bytes.Length;
                return new HeldBlock(bytes);
            }

            if (_current is null || _current.Length >= FileBytes)
            {
                _current?.Retire();
                DropIfDone(_current);
                _current = ReadAheadFile.Create(directory);
                _files.Add(_current);
            }

            file = _current;
            offset = file.Reserve(bytes.Length);
        }

        try
        {
            await file.WriteAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
            return new HeldBlock(file, offset, bytes.Length);
        }
        catch
        {
            Forget(new HeldBlock(file, offset, bytes.Length));
            throw;
        }
    }

    /// <summary>Lets go of a held block (taken, or nobody wants it any more).</summary>
    public void Forget(HeldBlock block)
    {
        lock (_gate)
        {
            if (block.InMemory)
            {
                _inMemory -= block.Length;
                return;
            }

            var file = block.File!;
            file.Release();
            if (file == _current && file.Empty)
            {
                // Nothing waits in it: closed (and so deleted) now rather than left on disk until it fills.
                file.Retire();
                _current = null;
            }

            DropIfDone(file);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var file in _files)
            {
                file.Dispose();
            }

            _files.Clear();
            _current = null;
        }
    }

    private void DropIfDone(ReadAheadFile? file)
    {
        if (file is { Done: true })
        {
            file.Dispose();
            _files.Remove(file);
        }
    }
}

/// <summary>One read-ahead file: blocks appended at reserved offsets, read back by position; closed (and so deleted) once retired and empty.</summary>
internal sealed class ReadAheadFile : IDisposable
{
    private readonly FileStream _file;
    private int _live;
    private bool _retired;

    private ReadAheadFile(FileStream file) => _file = file;

    /// <summary>Bytes reserved so far.</summary>
    public long Length { get; private set; }

    /// <summary>Holding no block.</summary>
    public bool Empty => _live == 0;

    /// <summary>Retired (no new blocks) and holding none: it can go.</summary>
    public bool Done => _retired && _live == 0;

    private SafeFileHandle Handle => _file.SafeFileHandle;

    public static ReadAheadFile Create(string directory)
    {
        SecretFile.EnsurePrivateDirectory(directory);
        var path = Path.Combine(directory, "read-ahead-" + Guid.NewGuid().ToString("N"));
        return new ReadAheadFile(new FileStream(path, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.Asynchronous | FileOptions.DeleteOnClose)));
    }

    // The three below run under the read-ahead's gate.
    public long Reserve(int length)
    {
        var offset = Length;
        Length += length;
        _live++;
        return offset;
    }

    public void Release() => _live--;

    public void Retire() => _retired = true;

    public ValueTask WriteAsync(long offset, byte[] bytes, CancellationToken cancellationToken) =>
        RandomAccess.WriteAsync(Handle, bytes, offset, cancellationToken);

    public async ValueTask<byte[]> ReadAsync(long offset, int length, CancellationToken cancellationToken)
    {
        var bytes = new byte[length];
        var done = 0;
        while (done < length)
        {
            var read = await RandomAccess.ReadAsync(Handle, bytes.AsMemory(done), offset + done, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("a read-ahead file ended before the block it holds");
            }

            done += read;
        }

        return bytes;
    }

    public void Dispose() => _file.Dispose();
}
