using System.Text.Json;
using System.Text.Json.Serialization;
using TrustedProxy.Crypto;

namespace TrustedProxy.Backup;

/// <summary>
/// A generation being shipped: how many objects (manifest included) and how many are in the backend;
/// the staging and relocation files (entry paths) it carries and the audit log's length in it, where
/// its increments start (they leave those files out, and their audit tail starts at that length).
/// </summary>
internal sealed record StagedGeneration(long Generation, long Objects, long Shipped, DateTimeOffset CreatedAt, IReadOnlyList<string>? BaseFiles = null, long BaseAuditBytes = 0);

/// <summary>An increment being shipped: its objects (commit included), how many are in the backend, and what it adds to the chain once committed.</summary>
internal sealed record StagedIncrement(long Increment, long Objects, long Shipped, DateTimeOffset CreatedAt, IReadOnlyList<string> Files, long AuditBytes);

/// <summary>The newest increment whose commit is in the backend.</summary>
internal sealed record CommittedIncrement(long Increment, DateTimeOffset CreatedAt, DateTimeOffset CommittedAt);

/// <summary>
/// The increments appended to the newest complete generation: which staging and relocation files
/// the backend holds for it (base and committed increments), how much of the audit log, the next
/// increment's number, the one being shipped, the newest committed. Broken: an increment's staged
/// file was lost after some of it left; no increment follows it (recovery would stop at the gap), so
/// a new generation is due at once. PreviousReach: when the previous generation's chain (kept whole)
/// had an increment newer than this generation's snapshot, that increment's time; recovery restores
/// that chain until this one reaches further, so the backup point does not move back.
/// </summary>
internal sealed record IncrementChain(long Generation, IReadOnlyList<string> Shipped, long AuditBytes, long NextIncrement, StagedIncrement? Staged, CommittedIncrement? Last, bool Broken = false, DateTimeOffset? PreviousReach = null);

/// <summary>The newest generation whose manifest is in the backend.</summary>
internal sealed record CompleteGeneration(long Generation, DateTimeOffset CreatedAt, DateTimeOffset CompletedAt);

/// <summary>
/// What of one generation is in the backend, recorded as each of its objects is shipped, so that
/// all of it can be deleted once it is retired: its base objects 0 … Shipped-1 of Objects (the
/// manifest the last), each committed increment's object count in order (its commit the last), and
/// how many data objects of the increment after them left (one being shipped, or dropped or
/// abandoned part-way: its commit never left). A generation abandoned part-way (its staged file
/// lost) has Shipped &lt; Objects and is never complete.
/// </summary>
internal sealed record GenerationObjects(long Generation, long Objects, long Shipped, IReadOnlyList<long> Increments, long PartialIncrement = 0)
{
    [JsonIgnore]
    public bool Complete => Objects > 0 && Shipped == Objects;

    /// <summary>
    /// The sequences of every object of this generation that is to be deleted once it is retired:
    /// all but object 0, which stays for good (recovery finds the newest generation by galloping on
    /// each generation's object 0 from generation 0, so none may go missing). After a run cut short
    /// (a generation or increment abandoned) also the object that would have come next: a crash
    /// after its put and before its progress was written leaves it in the backend and in the block
    /// index unrecorded here; a name that no index row carries is skipped, so no delete is ever sent
    /// for a name that was never put.
    /// </summary>
    public IEnumerable<ulong> RetiredSequences()
    {
        ulong BaseSequence(long index) => index == Objects - 1 ? BackupKeys.ManifestSequence : (ulong)index;
        for (long i = 1; i < Shipped; i++)
        {
            yield return BaseSequence(i);
        }

        if (Shipped is > 0 && Shipped < Objects)
        {
            yield return BaseSequence(Shipped);
        }

        for (var k = 0; k < Increments.Count; k++)
        {
            for (long i = 0; i < Increments[k] - 1; i++)
            {
                yield return BackupKeys.IncrementSequence(k, i);
            }

            yield return BackupKeys.IncrementSequence(k, BackupKeys.CommitIndex);
        }

        if (Complete && Increments.Count < BackupKeys.MaxIncrements)
        {
            long next = Increments.Count;
            for (long i = 0; i <= PartialIncrement && i < BackupKeys.CommitIndex; i++)
            {
                yield return BackupKeys.IncrementSequence(next, i);
            }

            yield return BackupKeys.IncrementSequence(next, BackupKeys.CommitIndex);
        }
    }
}

/// <summary>
/// The backup's progress, in <c>data/backup/state.json</c> (owner-only, rewritten atomically after
/// each shipped object), so a restart goes on where it stopped: the same staged file, the next
/// object. Generation numbers only go up; a restored proxy starts after the generation it came from.
/// Generations: what of each generation not yet retired is in the backend. Retiring: generations
/// retired (older than the kept ones) whose objects' deletion the upload cache has not all scheduled
/// yet, in order; RetiringScheduled: how many of the first one's names it has scheduled. They stay
/// here until it has, so a restart loses no retirement.
/// </summary>
internal sealed record BackupState(
    long NextGeneration, StagedGeneration? Staged, CompleteGeneration? LastComplete, DateTimeOffset Since, IncrementChain? Chain = null,
    IReadOnlyList<GenerationObjects>? Generations = null, IReadOnlyList<GenerationObjects>? Retiring = null, long RetiringScheduled = 0)
{
    public const string FileName = "state.json";

    /// <summary>The newest complete generation's newest committed increment (null: none yet).</summary>
    [JsonIgnore]
    public CommittedIncrement? LastIncrement => Chain is { Last: { } last } chain && chain.Generation == LastComplete?.Generation ? last : null;

    /// <summary>
    /// The backup point a recovery reaches now (null: no complete generation): the newest increment
    /// of the newest complete generation, else its snapshot, or the previous chain's reach when that
    /// is later (<see cref="IncrementChain.PreviousReach"/>).
    /// </summary>
    [JsonIgnore]
    public DateTimeOffset? BackupPoint
    {
        get
        {
            var point = LastIncrement?.CreatedAt ?? LastComplete?.CreatedAt;
            return Chain is { PreviousReach: { } reach } chain && chain.Generation == LastComplete?.Generation && reach > point ? reach : point;
        }
    }
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static BackupState? Read(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? JsonSerializer.Deserialize<BackupState>(File.ReadAllBytes(path), Json) : null;
    }

    public void Write(string directory)
    {
        SecretFile.EnsurePrivateDirectory(directory);
        var temporary = Path.Combine(directory, $".{FileName}.{Guid.NewGuid():N}.tmp");
        SecretFile.Write(temporary, JsonSerializer.SerializeToUtf8Bytes(this, Json));
        File.Move(temporary, Path.Combine(directory, FileName), overwrite: true);
    }
}
