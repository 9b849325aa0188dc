using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Backup;

/// <summary>One file of a generation: where it goes (<c>data/…</c> or <c>certs/…</c>), how long, its SHA-256.</summary>
internal sealed record BackupEntry(string Path, long Length, byte[] Sha256);

/// <summary>
/// The plaintext of a generation before it is cut into objects: a magic line, a table of entries
/// (path, length, SHA-256), then each entry's bytes in table order. The manifest holds the stream's
/// own length and SHA-256, so the table, and through it every entry, is covered by the manifest.
/// </summary>
internal static class BackupStreamFormat
{
    public static readonly byte[] Magic = "TPBACKUP v1\n"u8.ToArray();
    public const string DataPrefix = "data/";
    public const string CertsPrefix = "certs/";
    private const int MaxEntries = 10_000_000;

    /// <summary>Writes the stream of <paramref name="files"/> (entry path → source file, which must not change meanwhile).</summary>
    public static async Task<IReadOnlyList<BackupEntry>> WriteAsync(IReadOnlyList<(string Path, string Source)> files, Stream output, CancellationToken cancellationToken)
    {
        var entries = new List<BackupEntry>(files.Count);
        foreach (var (path, source) in files)
        {
            CheckPath(path);
            await using var input = File.OpenRead(source);
            var hash = await SHA256.HashDataAsync(input, cancellationToken).ConfigureAwait(false);
            entries.Add(new BackupEntry(path, input.Length, hash));
        }

        await output.WriteAsync(Magic, cancellationToken).ConfigureAwait(false);
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)entries.Count);
        await output.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        foreach (var entry in entries)
        {
            var name = Encoding.UTF8.GetBytes(entry.Path);
            var row = new byte[2 + name.Length + 8 + 32];
            BinaryPrimitives.WriteUInt16BigEndian(row, (ushort)name.Length);
            name.CopyTo(row, 2);
            BinaryPrimitives.WriteInt64BigEndian(row.AsSpan(2 + name.Length), entry.Length);
            entry.Sha256.CopyTo(row, 2 + name.Length + 8);
            await output.WriteAsync(row, cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < files.Count; i++)
        {
            await using var input = File.OpenRead(files[i].Source);
            if (input.Length != entries[i].Length)
            {
                throw new IOException($"'{files[i].Path}' changed while the backup was written");
            }

            await input.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
        }

        return entries;
    }

    /// <summary>
    /// Reads a stream and writes each entry under <paramref name="dataRoot"/> or <paramref name="certsRoot"/>,
    /// checking every entry's length and SHA-256 against the table; returns the table.
    /// </summary>
    public static async Task<IReadOnlyList<BackupEntry>> ExtractAsync(Stream input, string dataRoot, string certsRoot, CancellationToken cancellationToken)
    {
        var magic = new byte[Magic.Length];
        await ReadExactAsync(input, magic, "the magic line", cancellationToken).ConfigureAwait(false);
        if (!magic.AsSpan().SequenceEqual(Magic))
        {
            throw new BackupIntegrityException("the backup stream does not start with the backup format's magic line");
        }

        var four = new byte[4];
        await ReadExactAsync(input, four, "the entry count", cancellationToken).ConfigureAwait(false);
        var count = BinaryPrimitives.ReadUInt32BigEndian(four);
        if (count > MaxEntries)
        {
            throw new BackupIntegrityException($"the backup stream declares {count} entries");
        }

        var entries = new List<BackupEntry>((int)count);
        for (var i = 0; i < count; i++)
        {
            var two = new byte[2];
            await ReadExactAsync(input, two, "the entry table", cancellationToken).ConfigureAwait(false);
            var name = new byte[BinaryPrimitives.ReadUInt16BigEndian(two)];
            await ReadExactAsync(input, name, "the entry table", cancellationToken).ConfigureAwait(false);
            var rest = new byte[40];
            await ReadExactAsync(input, rest, "the entry table", cancellationToken).ConfigureAwait(false);
            var path = Encoding.UTF8.GetString(name);
            CheckPath(path);
            var length = BinaryPrimitives.ReadInt64BigEndian(rest);
            if (length < 0)
            {
                throw new BackupIntegrityException($"entry '{path}' has a negative length");
            }

            entries.Add(new BackupEntry(path, length, rest[8..]));
        }

        var buffer = new byte[1 << 16];
        foreach (var entry in entries)
        {
            var target = TargetOf(entry.Path, dataRoot, certsRoot);
            CreateOwnerOnly(System.IO.Path.GetDirectoryName(target)!);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var output = new FileStream(target, Crypto.SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None)))
            {
                var left = entry.Length;
                while (left > 0)
                {
                    var read = await input.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new BackupIntegrityException($"the backup stream ends inside entry '{entry.Path}'");
                    }

                    hash.AppendData(buffer, 0, read);
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    left -= read;
                }
            }

            if (!CryptographicOperations.FixedTimeEquals(hash.GetHashAndReset(), entry.Sha256))
            {
                throw new BackupIntegrityException($"entry '{entry.Path}' does not match its SHA-256 in the entry table");
            }
        }

        if (await input.ReadAsync(buffer.AsMemory(0, 1), cancellationToken).ConfigureAwait(false) != 0)
        {
            throw new BackupIntegrityException("the backup stream goes on after its last entry");
        }

        return entries;
    }

    internal static void CreateOwnerOnly(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static string TargetOf(string path, string dataRoot, string certsRoot) =>
        path.StartsWith(DataPrefix, StringComparison.Ordinal)
            ? System.IO.Path.Combine(dataRoot, path[DataPrefix.Length..])
            : System.IO.Path.Combine(certsRoot, path[CertsPrefix.Length..]);

    // Entry paths are relative, forward-slashed, under data/ or certs/, and never climb out.
    private static void CheckPath(string path)
    {
        var valid = (path.StartsWith(DataPrefix, StringComparison.Ordinal) || path.StartsWith(CertsPrefix, StringComparison.Ordinal))
            && !path.Contains('\\', StringComparison.Ordinal) && !path.Contains('\0', StringComparison.Ordinal)
            && path.Split('/').All(part => part.Length > 0 && part != "." && part != "..");
        if (!valid)
        {
            throw new BackupIntegrityException("the backup names an entry outside data/ and certs/");
        }
    }

    private static async Task ReadExactAsync(Stream input, byte[] buffer, string what, CancellationToken cancellationToken)
    {
        try
        {
            await input.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            throw new BackupIntegrityException($"the backup stream ends inside {what}");
        }
    }
}
