using System.Diagnostics;

namespace TrustedProxy.Testing;

/// <summary>
/// A real file system that runs out of space: a small tmpfs mounted over a directory, filled with
/// a ballast file to a chosen number of free bytes, so that the kernel itself answers ENOSPC. Only
/// a mount makes a disk really full without filling the machine's; it needs root (CAP_SYS_ADMIN),
/// which the CI container has. Without it the test fails, saying so, rather than pass untested.
/// </summary>
public sealed class FullFileSystem : IDisposable
{
    private readonly string _ballast;

    private FullFileSystem(string directory)
    {
        Directory = directory;
        _ballast = Path.Combine(directory, "ballast.bin");
    }

    public string Directory { get; }

    public long FreeBytes => new DriveInfo(Directory).AvailableFreeSpace;

    /// <summary>Mounts a tmpfs of <paramref name="sizeBytes"/> at <paramref name="directory"/> (created if missing, must be empty).</summary>
    public static FullFileSystem Mount(string directory, long sizeBytes)
    {
        System.IO.Directory.CreateDirectory(directory);
        var (exitCode, error) = Run("mount", "-t", "tmpfs", "-o", $"size={sizeBytes},mode=0700", "tmpfs", directory);
        if (exitCode != 0)
        {
            throw new InvalidOperationException(
                $"cannot mount a tmpfs at '{directory}' ({error.Trim()}): the full-disk tests need root (CAP_SYS_ADMIN) to make a real full file system; run them as root, as CI does");
        }

        return new FullFileSystem(directory);
    }

    /// <summary>Fills the file system until only about <paramref name="freeBytes"/> remain.</summary>
    public void FillLeaving(long freeBytes)
    {
        var toWrite = FreeBytes - freeBytes;
        using var ballast = new FileStream(_ballast, FileMode.Append, FileAccess.Write);
        var chunk = new byte[1 << 16];
        while (toWrite > 0)
        {
            var count = (int)Math.Min(chunk.Length, toWrite);
            ballast.Write(chunk, 0, count);
            toWrite -= count;
        }
    }

    /// <summary>The operator frees space.</summary>
    public void Free() => File.Delete(_ballast);

    public void Dispose()
    {
        // Lazily: the proxy may still hold files open on it for a moment after it stopped.
        Run("umount", "-l", Directory);
    }

    private static (int ExitCode, string Error) Run(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, error);
        }
        catch (System.ComponentModel.Win32Exception missing)
        {
            return (-1, missing.Message);
        }
    }
}
