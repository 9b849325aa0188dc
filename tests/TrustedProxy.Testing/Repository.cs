namespace TrustedProxy.Testing;

/// <summary>Finds things in the repository the tests run from.</summary>
public static class Repository
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "TrustedProxy.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("the tests must run from inside the TrustedProxy repository");
    });

    public static string Root => RootPath.Value;

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>An npm tool installed by <c>npm ci --prefix tools</c>; a clear failure when it is not.</summary>
    public static string NodeTool(string name)
    {
        var path = Path("tools", "node_modules", ".bin", name);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"'{name}' is not installed: run 'npm ci --prefix tools' (the README's test command does this)");
        }

        return path;
    }
}
