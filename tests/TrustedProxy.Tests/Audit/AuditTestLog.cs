using System.Text;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;

namespace TrustedProxy.Tests.Audit;

/// <summary>
/// An audit log in a temporary directory, with what a test (or an attacker with write access to
/// the files) does to it: read and rewrite its lines, recompute the hash chain after a change.
/// </summary>
internal sealed class AuditTestLog : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public AuditTestLog(int checkpointEveryEntries = 5, byte masterKeyByte = 7)
    {
        Keys = ProxyKeyRing.FromBytes(Enumerable.Repeat(masterKeyByte, ProxyKeyRing.MasterKeyBytes).ToArray());
        Options = new AuditLogOptions { CheckpointEveryEntries = checkpointEveryEntries, LockTimeoutSeconds = 2 };
    }

    public ProxyKeyRing Keys { get; }

    public AuditLogOptions Options { get; set; }

    /// <summary>The key checkpoints are signed with now (generated when the log was first opened).</summary>
    public AuditPublicKey PublicKey => AuditKeyStore.PublicKeys(Paths)[^1];

    /// <summary>What a local verification starts from: the store's first key (or the derived key of a log from before).</summary>
    public AuditKeyTrust Trust => AuditKeyStore.LocalTrust(Paths, Keys);

    public string Root => _directory.Path;

    public AuditLogPaths Paths => new(Path.Combine(_directory.Path, "audit"));

    public AuditLog Open() => AuditLog.Open(Paths.Directory, Keys, Options, TimeProvider.System,
        new FixedAuditContext(new AuditContext(AuditActor.Operator("tester"))));

    /// <summary>A log of <paramref name="entries"/> test entries, closed (so its last entry is a checkpoint).</summary>
    public async Task CreateAsync(int entries, string tag = "a")
    {
        await using var log = Open();
        await AppendAsync(log, entries, tag);
    }

    public static async Task AppendAsync(AuditLog log, int entries, string tag)
    {
        for (var i = 0; i < entries; i++)
        {
            await log.AppendAsync(Event(tag, i));
        }
    }

    public static AuditEvent Event(string tag, int n) => new("test", new JsonObject { ["tag"] = tag, ["n"] = n });

    public AuditVerification Verify(AuditCheckpoint? external = null) =>
        AuditLog.VerifyDirectory(Paths, Trust, external is null ? null : new AuditAnchor("the checkpoint kept elsewhere", external, External: true), Options);

    public List<string> Lines() => [.. File.ReadAllLines(Paths.Log)];

    public void WriteLines(IEnumerable<string> lines) => File.WriteAllText(Paths.Log, string.Concat(lines.Select(l => l + "\n")));

    public static JsonObject Parse(string line) => (JsonObject)JsonNode.Parse(line)!;

    /// <summary>What someone who can write the files but lacks the key does after changing a line: recompute every hash from there on.</summary>
    public static List<string> Rehash(List<string> lines, int from)
    {
        var head = from == 0 ? AuditHashes.GenesisHex : Parse(lines[from - 1])["hash"]!.GetValue<string>();
        var result = lines.Take(from).ToList();
        foreach (var line in lines.Skip(from))
        {
            var entry = Parse(line);
            entry.Remove("hash");
            entry.Remove("prev");
            entry["prev"] = head;
            var body = entry.ToJsonString();
            head = AuditHashes.Hex(AuditHashes.Entry(Encoding.UTF8.GetBytes(body)));
            result.Add(body[..^1] + $",\"hash\":\"{head}\"}}");
        }

        return result;
    }

    /// <summary>A copy of the log's files as they are now (a backup, or an attacker's snapshot).</summary>
    public string Snapshot()
    {
        var copy = Path.Combine(_directory.Path, "snapshot-" + Guid.NewGuid().ToString("N")[..8]);
        CopyDirectory(Paths.Directory, copy);
        return copy;
    }

    /// <summary>Puts a snapshot back in place of the log: a rollback.</summary>
    public void RestoreFrom(string snapshot)
    {
        Directory.Delete(Paths.Directory, recursive: true);
        CopyDirectory(snapshot, Paths.Directory);
    }

    public void Dispose()
    {
        Keys.Dispose();
        _directory.Dispose();
    }

    private static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)));
        }
    }
}
