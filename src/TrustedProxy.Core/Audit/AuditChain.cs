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
    private readonly AuditKeyTrust _trust;
    private readonly Dictionary<string, AuditPublicKey> _keys;

    private AuditChain(AuditKeyTrust trust, Dictionary<string, AuditPublicKey> keys, AuditPublicKey? currentKey, long count, string head, MerkleFrontier tree, AuditCheckpoint? last, long checkpoints, long lastCheckpointSequence)
    {
        _trust = trust;
        _keys = keys;
        CurrentKey = currentKey;
        Count = count;
        HeadHex = head;
        Tree = tree;
        LastCheckpoint = last;
        CheckpointCount = checkpoints;
        LastCheckpointSequence = lastCheckpointSequence;
    }

    /// <summary>A chain whose first signing key must be one of <paramref name="trust"/>.</summary>
    public AuditChain(AuditKeyTrust trust)
        : this(trust, [], null, 0, AuditHashes.GenesisHex, new MerkleFrontier(), null, 0, -1)
    {
    }

    /// <summary>The key the next checkpoint must be signed with; null until the first checkpoint or handover.</summary>
    public AuditPublicKey? CurrentKey { get; private set; }

    /// <summary>A key the log has used so far (to check a checkpoint kept elsewhere), or null.</summary>
    public AuditPublicKey? KnownKey(string keyId) => _keys.GetValueOrDefault(keyId);

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

    public AuditChain Clone() => new(_trust, new Dictionary<string, AuditPublicKey>(_keys), CurrentKey, Count, HeadHex, Tree.Clone(), LastCheckpoint, CheckpointCount, LastCheckpointSequence);

    /// <summary>For the writer: the key it signs with from now on (its first key, or the one a handover it wrote hands over to).</summary>
    public void Use(AuditPublicKey key)
    {
        _keys.TryAdd(key.KeyId, key);
        CurrentKey = key;
    }

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
    public AuditProblem? Accept(ReadOnlySpan<byte> bytes, long line, out AuditEntry? entry, out long? foundSequence)
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
        AuditPublicKey? signer = null;
        AuditPublicKey? handedOver = null;
        if (entry.Kind == AuditKinds.Checkpoint)
        {
            if (CheckCheckpoint(entry, line, out checkpoint, out signer) is { } problem)
            {
                return problem;
            }
        }
        else if (entry.Kind == AuditKinds.AuditKey)
        {
            if (CheckHandover(entry, line, out signer, out handedOver) is { } problem)
            {
                return problem;
            }
        }

        if (signer is not null)
        {
            Use(signer);
        }

        if (handedOver is not null)
        {
            Use(handedOver);
        }

        Add(Convert.FromHexString(entry.Hash), checkpoint);
        return null;
    }

    // The key a signature of the log must be made with: the current one, or before the log has
    // one, any key the verifier trusts as a first key.
    private AuditPublicKey? Expected(string keyId) => CurrentKey ?? _trust.Find(keyId);

    private string NotExpected(string what, string keyId) => CurrentKey is { } current
        ? $"{what} names audit key {keyId}, but the log's key at that point is {current.KeyId}: forged, or the log's keys were replaced"
        : $"{what} names audit key {keyId}, which is not a key this verification trusts as the log's first ({_trust.Describe()}): forged, from another proxy, or verified with the wrong public key";

    private AuditProblem? CheckHandover(AuditEntry entry, long line, out AuditPublicKey? previous, out AuditPublicKey? next)
    {
        previous = null;
        next = null;
        string previousId, keyId, publicKey;
        string? endorsement, possession;
        try
        {
            previousId = entry.Data["previous"]!.GetValue<string>();
            keyId = entry.Data["keyId"]!.GetValue<string>();
            publicKey = entry.Data["publicKey"]!.GetValue<string>();
            endorsement = entry.Data["endorsement"]?.GetValue<string>();
            possession = entry.Data["possession"]?.GetValue<string>();
            next = AuditPublicKey.FromSubjectPublicKeyInfo(Convert.FromBase64String(publicKey));
        }
        catch (Exception ex) when (ex is NullReferenceException or InvalidOperationException or FormatException or System.Security.Cryptography.CryptographicException)
        {
            return new AuditProblem(AuditProblemKinds.Malformed, line, entry.Sequence, $"entry {entry.Sequence} (line {line}) is an audit-key handover without previous key, key id and a P-256 public key");
        }

        var what = $"the audit-key handover at entry {entry.Sequence} (line {line})";
        if (next.KeyId != keyId)
        {
            return new AuditProblem(AuditProblemKinds.Malformed, line, entry.Sequence, $"{what} names key {keyId} but carries key {next.KeyId}");
        }

        previous = Expected(previousId);
        if (previous is null || previous.KeyId != previousId)
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence, NotExpected(what, previousId));
        }

        var signed = AuditKeyHandover.SignedBytes(previousId, keyId, publicKey);
        if (!previous.VerifiesText(signed, endorsement))
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence, $"{what} is not endorsed by the previous audit key {previousId}: forged");
        }

        if (!next.VerifiesText(signed, possession))
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence, $"{what} is not signed by the key {keyId} it hands over to: forged");
        }

        return null;
    }

    private AuditProblem? CheckCheckpoint(AuditEntry entry, long line, out AuditCheckpoint? checkpoint, out AuditPublicKey? key)
    {
        checkpoint = null;
        key = null;
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

        key = Expected(checkpoint.KeyId);
        if (key is null || checkpoint.KeyId != key.KeyId)
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, entry.Sequence, NotExpected($"checkpoint entry {entry.Sequence} (line {line})", checkpoint.KeyId));
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
