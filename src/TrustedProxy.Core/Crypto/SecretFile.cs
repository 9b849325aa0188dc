namespace TrustedProxy.Crypto;

/// <summary>
/// Reads and writes files that hold secrets. Every such file is created owner-read/write only (0600)
/// before a single secret byte is written, and replaced atomically, so a crash never leaves a
/// half-written or briefly world-readable key on disk.
/// </summary>
internal static class SecretFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnly | UnixFileMode.UserExecute;

    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        EnsurePrivateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.WriteThrough);

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Options for a new file that only its owner can read or write (ciphertext staging, scratch).</summary>
    public static FileStreamOptions OwnerOnlyOptions(FileMode mode, FileAccess access, FileOptions options, FileShare share = FileShare.None)
    {
        var result = new FileStreamOptions { Mode = mode, Access = access, Options = options, Share = share, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
        {
            result.UnixCreateMode = OwnerOnly;
        }

        return result;
    }

    public static void WriteText(string path, string content) =>
        Write(path, System.Text.Encoding.UTF8.GetBytes(content));

    public static byte[] Read(string path)
    {
        RefuseIfReadableByOthers(path);
        return File.ReadAllBytes(path);
    }

    public static string ReadText(string path) => System.Text.Encoding.UTF8.GetString(Read(path));

    /// <summary>Creates the directory if needed; a new directory is owner-only (0700).</summary>
    public static void EnsurePrivateDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }
    }

    // A key file that others can read has already leaked; using it silently would hide that.
    private static void RefuseIfReadableByOthers(string path)
    {
        if (OperatingSystem.IsWindows() || !File.Exists(path))
        {
            return;
        }

        var mode = File.GetUnixFileMode(path);
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
        if ((mode & others) != 0)
        {
            throw new InsecureSecretFileException(path, mode);
        }
    }
}

/// <summary>A secret file is readable or writable by other users than its owner.</summary>
public sealed class InsecureSecretFileException(string path, UnixFileMode mode)
    : Exception($"secret file '{path}' has permissions {Convert.ToString((int)mode, 8)}; it must be readable by its owner only (chmod 600)")
{
    public string SecretPath { get; } = path;
}
