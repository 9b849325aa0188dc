using System.Globalization;

namespace TrustedProxy.Audit;

/// <summary>What <c>audit verify</c> found wrong, in a stable word (for the API) and a sentence.</summary>
public static class AuditProblemKinds
{
    public const string Malformed = "malformed";
    public const string Modified = "modified";
    public const string Deleted = "deleted";
    public const string Reordered = "reordered";
    public const string ChainBroken = "chain-broken";
    public const string CheckpointMismatch = "checkpoint-mismatch";
    public const string BadSignature = "bad-signature";
    public const string Truncated = "truncated";
    public const string RolledBack = "rolled-back";
    public const string Forked = "forked";
    public const string TornTail = "torn-tail";
}

/// <summary>The first problem found: where (line from 1, entry from 0 where known) and what.</summary>
public sealed record AuditProblem(string Kind, long Line, long? Entry, string Message);

/// <summary>
/// The state of a log read so far, entry by entry: how many entries, the last entry's hash, the
/// Merkle tree's right edge, the last checkpoint. <see cref="Accept"/> checks a line found in a file
/// against it; the writer and the verifier share it, so the proxy never extends a log it would
/// itself call broken.
/// </summary>
internal sealed class AuditChain
{
    private AuditChain(long count, string head, MerkleFrontier tree, AuditCheckpoint? last, long checkpoints, long lastCheckpointSequence)
    {
        Count = count;
        HeadHex = head;
        Tree = tree;
        LastCheckpoint = last;
        CheckpointCount = checkpoints;
        LastCheckpointSequence = lastCheckpointSequence;
    }

    public AuditChain()
        : this(0, AuditHashes.GenesisHex, new MerkleFrontier(), null, 0, -1)
    {
    }

    /// <summary>Entries so far (the next entry's sequence number).</summary>
    public long Count { get; private set; }

    /// <summary>The last entry's hash (hex); zeros before the first.</summary>
    public string HeadHex { get; private set; }

    public MerkleFrontier Tree { get; }

    public AuditCheckpoint? LastCheckpoint { get; private set; }

    public long CheckpointCount { get; private set; }

    private long LastCheckpointSequence { get; set; }

    /// <summary>Entries after the last checkpoint entry: no signed checkpoint covers them yet.</summary>
    public long Unanchored => Count - (LastCheckpointSequence + 1);

    public AuditChain Clone() => new(Count, HeadHex, Tree.Clone(), LastCheckpoint, CheckpointCount, LastCheckpointSequence);

    /// <summary>Takes an entry the writer built itself (its hash computed as it was written).</summary>
    public void Add(byte[] hash, AuditCheckpoint? checkpoint)
    {
        if (checkpoint is not null)
        {
            LastCheckpoint = checkpoint;
            LastCheckpointSequence = Count;
            CheckpointCount++;
        }

        Tree.Add(hash);
        HeadHex = AuditHashes.Hex(hash);
        Count++;
    }

    /// <summary>
    /// Checks one line (without its newline) found at <paramref name="line"/> and takes it, or
    /// returns the problem (and takes nothing). A sequence number out of place is reported as
    /// <see cref="AuditProblemKinds.Reordered"/> with the number found in <paramref name="foundSequence"/>;
    /// the verifier looks further to tell a deletion from a reordering.
    /// </summary>
    public AuditProblem? Accept(ReadOnlySpan<byte> bytes, long line, AuditPublicKey key, out AuditEntry? entry, out long? foundSequence)
    {
        entry = null;
        foundSequence = null;
        string computed;
        try
        {
            (entry, computed) = AuditLine.Parse(bytes);
        }
        catch (FormatException ex)
        {
            return new AuditProblem(AuditProblemKinds.Malformed, line, null, $"line {line} is not an audit entry ({ex.Message}): modified or corrupted");
        }

        if (computed != entry.Hash)
        {
            return new AuditProblem(AuditProblemKinds.Modified, line, entry.Sequence, $"entry {entry.Sequence} (line {line}) was modified: its content does not match its hash");
        }

        if (entry.Sequence != Count)
        {
            foundSequence = entry.Sequence;
            return new AuditProblem(AuditProblemKinds.Reordered, line, Count, $"line {line} holds entry {entry.Sequence} where entry {Count} belongs");
        }

        if (entry.Previous != HeadHex)
        {
            return new AuditProblem(AuditProblemKinds.ChainBroken, line, entry.Sequence,
                $"entry {entry.Sequence} (line {line}) does not follow the entry before it (its previous-entry hash differs): entries were replaced, inserted or deleted and renumbered");
        }

        AuditCheckpoint? checkpoint = null;
        if (entry.Kind == AuditKinds.Checkpoint)
        {
            if (CheckCheckpoint(entry, line, key, out checkpoint) is { } problem)
            {
                return problem;
            }
        }

        Add(Convert.FromHexString(entry.Hash), checkpoint);
        return null;
    }

    private AuditProblem? CheckCheckpoint(AuditEntry entry, long line, AuditPublicKey key, out AuditCheckpoint? checkpoint)
    {
        checkpoint = null;
        try
        {
            checkpoint = new AuditCheckpoint(
                entry.Data["keyId"]!.GetValue<string>(),
                entry.Data["size"]!.GetValue<long>(),
                entry.Data["root"]!.GetValue<string>(),
                entry.Time,
                entry.Data["signature"]!.GetValue<string>());
        }
        catch (Exception ex) when (ex is NullReferenceException or InvalidOperationException or FormatException)
        {
            return new AuditProblem(AuditProblemKinds.Malformed, line, entry.Sequence, $"entry {entry.Sequence} (line {line}) is a checkpoint without size, root, key id and signature");
        }

        if (checkpoint.KeyId != key.KeyId)
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence,
                $"checkpoint entry {entry.Sequence} (line {line}) names audit key {checkpoint.KeyId}, not the key {key.KeyId} it is verified with");
        }

        if (!key.Verifies(checkpoint))
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence,
                $"checkpoint entry {entry.Sequence} (line {line}) has a signature that does not verify with audit key {key.KeyId}: forged");
        }

        if (checkpoint.Size != Count || checkpoint.Root != AuditHashes.Hex(Tree.Root()))
        {
            return new AuditProblem(AuditProblemKinds.CheckpointMismatch, line, entry.Sequence, string.Create(CultureInfo.InvariantCulture,
                $"checkpoint entry {entry.Sequence} (line {line}) signed {checkpoint.Size} entries with a root the {Count} entries before it do not have: an earlier entry was modified, inserted, deleted or reordered and the chain recomputed"));
        }

        return null;
    }
}
