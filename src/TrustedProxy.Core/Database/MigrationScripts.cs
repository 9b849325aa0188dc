using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace TrustedProxy.Database;

/// <summary>One numbered script: version N is the N-th, applied once, in order.</summary>
internal sealed record MigrationScript(int Version, string Name, string Sql);

/// <summary>
/// The numbered migration scripts of one schema on one engine, read from the resources embedded
/// in this assembly (Database/Migrations/{schema}/{engine}/NNNN_name.sql). The numbers must run
/// 1, 2, 3… without a gap or a repeat: a missing script would leave a database between versions.
/// </summary>
internal sealed partial class MigrationScripts
{
    private const string Prefix = "TrustedProxy.Database.Migrations/";

    private MigrationScripts(DatabaseSchema schema, DatabaseEngine engine, IReadOnlyList<MigrationScript> scripts)
    {
        Schema = schema;
        Engine = engine;
        Scripts = scripts;
    }

    public DatabaseSchema Schema { get; }

    public DatabaseEngine Engine { get; }

    public IReadOnlyList<MigrationScript> Scripts { get; }

    /// <summary>The version a database has once every script ran.</summary>
    public int Latest => Scripts.Count;

    public static MigrationScripts Load(DatabaseSchema schema, DatabaseEngine engine)
    {
        var assembly = typeof(MigrationScripts).Assembly;
        var folder = $"{Prefix}{schema.Name}/{engine}/";
        var scripts = new List<MigrationScript>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(folder, StringComparison.Ordinal)))
        {
            var file = resource[folder.Length..];
            var match = FileName().Match(file);
            if (!match.Success)
            {
                throw new InvalidOperationException($"migration script '{resource}' is not named NNNN_name.sql");
            }

            scripts.Add(new MigrationScript(int.Parse(match.Groups["version"].Value, CultureInfo.InvariantCulture), match.Groups["name"].Value, Read(assembly, resource)));
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < scripts.Count; i++)
        {
            if (scripts[i].Version != i + 1)
            {
                throw new InvalidOperationException($"the {schema.Description} migrations for {engine} skip or repeat version {i + 1} ({scripts[i].Version}_{scripts[i].Name}.sql)");
            }
        }

        return scripts.Count > 0
            ? new MigrationScripts(schema, engine, scripts)
            : throw new InvalidOperationException($"no {schema.Description} migrations for {engine} are embedded under {folder}");
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    [GeneratedRegex(@"^(?<version>[0-9]{4})_(?<name>[a-z0-9_]+)\.sql$")]
    private static partial Regex FileName();
}
