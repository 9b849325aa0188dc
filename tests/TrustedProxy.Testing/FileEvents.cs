namespace TrustedProxy.Testing;

/// <summary>
/// Waiting on something another process (or the server's own threads) writes to disk: the
/// condition is looked at once, then again after each change inotify reports under the directory,
/// never on a timer, so a test is as fast as the writes it waits for and fails only at the deadline.
/// </summary>
public static class FileEvents
{
    /// <param name="directory">Where the writes land (subfolders included).</param>
    /// <param name="condition">Looked at first, and after each batch of changes.</param>
    /// <param name="timeout">How long to wait in all.</param>
    /// <param name="failure">The message of the <see cref="TimeoutException"/> thrown when the deadline passes.</param>
    public static async Task WaitUntilAsync(string directory, Func<Task<bool>> condition, TimeSpan timeout, Func<string> failure)
    {
        using var changed = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = true, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
        void Changed(object sender, FileSystemEventArgs e) => changed.Release();
        watcher.Created += Changed;
        watcher.Changed += Changed;
        watcher.Deleted += Changed;
        watcher.Renamed += (sender, e) => changed.Release();
        watcher.EnableRaisingEvents = true;
        using var deadline = new CancellationTokenSource(timeout);
        while (!await condition())
        {
            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException(failure());
            }

            // Many changes since the last look: one more look covers them all.
            while (changed.Wait(0))
            {
            }
        }
    }
}
