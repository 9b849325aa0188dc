using System.Globalization;
using System.Text.Json;

namespace TrustedProxy.Audit;

/// <summary>A checkpoint the log must contain: the proxy's own latest (audit/checkpoint.json), or one kept elsewhere.</summary>
/// <param name="Name">How messages name it.</param>
/// <param name="Checkpoint">The signed tree head.</param>
/// <param name="External">Kept outside the proxy: a log shorter than it was rolled back (not merely truncated).</param>
internal sealed record AuditAnchor(string Name, AuditCheckpoint Checkpoint, bool External);

/// <summary>The verdict on a log.</summary>
/// <param name="Intact">No problem found.</param>
/// <param name="Entries">Entries read that verify (up to the first problem).</param>
/// <param name="Checkpoints">Signed checkpoints among them.</param>
/// <param name="LastCheckpoint">The last of them.</param>
/// <param name="UnanchoredEntries">Entries after the last checkpoint: they verify as a chain, but no signature covers them yet.</param>
/// <param name="AnchorsMatched">Checkpoints kept outside the log that it was found to contain.</param>
/// <param name="Problem">The first problem, when not intact.</param>
public sealed record AuditVerification(bool Intact, long Entries, long Checkpoints, AuditCheckpoint? LastCheckpoint, long UnanchoredEntries, IReadOnlyList<string> AnchorsMatched, AuditProblem? Problem)
{
    /// <summary>One line for an operator.</summary>
    public string Summary => Problem is { } problem
        ? $"audit log NOT intact: {problem.Message}"
        : string.Create(CultureInfo.InvariantCulture, $"audit log intact: {Entries} entries, {Checkpoints} signed checkpoint(s)")
          + (LastCheckpoint is { } last ? string.Create(CultureInfo.InvariantCulture, $", the last covering {last.Size} entries signed {last.Time}") : string.Empty)
          + (UnanchoredEntries > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {UnanchoredEntries} entries after it not yet under a signed checkpoint") : string.Empty)
          + (AnchorsMatched.Count switch
          {
              0 => string.Empty,
              <= 3 => $"; contains {string.Join(" and ", AnchorsMatched)}",
              _ => string.Create(CultureInfo.InvariantCulture, $"; contains all {AnchorsMatched.Count} checkpoints kept elsewhere, the last {AnchorsMatched[^1]}"),
          });
}

/// <summary>What a scan of a log file leaves: the state after the last good entry, and where the complete lines end.</summary>
internal sealed record AuditScan(AuditChain Chain, long CompleteLength, long TornBytes, IReadOnlyList<string> AnchorsMatched, AuditProblem? Problem);

/// <summary>
/// Checks a log offline, from its bytes, its public key and any checkpoints kept elsewhere:
/// every entry's hash over its stored bytes (modification), sequence numbers and the previous-hash
/// chain (deletion, insertion, reordering), every checkpoint's signature and Merkle root (a chain
/// recomputed after tampering), and that every anchor checkpoint is contained (truncation,
/// rollback). Memory stays O(log n) however long the log is.
/// </summary>
internal static class AuditVerifier
{
    public static AuditVerification Verify(string logPath, AuditKeyTrust trust, IReadOnlyList<AuditAnchor> anchors, int maxEntryBytes, long? length = null)
    {
        var scan = Scan(logPath, trust, anchors, maxEntryBytes, length);
        var problem = scan.Problem;
        if (problem is null && scan.TornBytes > 0)
        {
            problem = new AuditProblem(AuditProblemKinds.TornTail, scan.Chain.Count + 1, scan.Chain.Count, string.Create(CultureInfo.InvariantCulture,
                $"the log ends inside entry {scan.Chain.Count} (line {scan.Chain.Count + 1}, {scan.TornBytes} bytes without a newline): an append cut short by a crash, or truncation; the proxy sets such bytes aside when it next opens the log"));
        }

        return new AuditVerification(problem is null, scan.Chain.Count, scan.Chain.CheckpointCount, scan.Chain.LastCheckpoint, scan.Chain.Unanchored, scan.AnchorsMatched, problem);
    }

    /// <summary>
    /// Reads the log up to the first problem. A torn last line is not a problem here (the writer
    /// repairs it); <see cref="AuditScan.TornBytes"/> says how long it is.
    /// </summary>
    public static AuditScan Scan(string logPath, AuditKeyTrust trust, IReadOnlyList<AuditAnchor> anchors, int maxEntryBytes, long? length = null)
    {
        var chain = new AuditChain(trust);
        var matched = new List<string>();
        var pending = anchors.OrderBy(a => a.Checkpoint.Size).ToList();
        long complete = 0;
        long torn = 0;
        using (var stream = OpenShared(logPath))
        {
            foreach (var line in AuditLogLines.Read(stream, 0, length ?? stream.Length, maxEntryBytes))
            {
                if (!line.Complete)
                {
                    torn = line.Length;
                    break;
                }

                if (line.TooLong)
                {
                    return new AuditScan(chain, complete, 0, matched, new AuditProblem(AuditProblemKinds.Malformed, line.Number, null,
                        string.Create(CultureInfo.InvariantCulture, $"line {line.Number} is longer than the {maxEntryBytes} bytes an entry may have: not an audit entry")));
                }

                if (chain.Accept(line.Bytes.Span, line.Number, out _, out var found) is { } problem)
                {
                    return new AuditScan(chain, complete, 0, matched, found is { } sequence ? Misplaced(logPath, chain.Count, sequence, line.Number, maxEntryBytes, length) : problem);
                }

                complete = line.Offset + line.Length + 1;
                while (pending.Count > 0 && pending[0].Checkpoint.Size == chain.Count)
                {
                    var anchor = pending[0];
                    pending.RemoveAt(0);
                    if (Unsigned(anchor, chain, trust, line.Number) is { } forged)
                    {
                        return new AuditScan(chain, complete, 0, matched, forged);
                    }

                    if (anchor.Checkpoint.Root != AuditHashes.Hex(chain.Tree.Root()))
                    {
                        return new AuditScan(chain, complete, 0, matched, new AuditProblem(AuditProblemKinds.Forked, line.Number, chain.Count - 1, string.Create(CultureInfo.InvariantCulture,
                            $"the log's first {anchor.Checkpoint.Size} entries do not have the root {anchor.Name} (signed {anchor.Checkpoint.Time}) attests: the log was rolled back and rewritten since")));
                    }

                    matched.Add(anchor.Name);
                }
            }
        }

        // Beyond the log's end a checkpoint may be signed by a key the log never got to (it was put
        // back to before a rotation): that is checked where it can be, and otherwise said.
        foreach (var anchor in pending.Where(a => chain.KnownKey(a.Checkpoint.KeyId) is not null || trust.Find(a.Checkpoint.KeyId) is not null))
        {
            if (Unsigned(anchor, chain, trust, chain.Count + 1) is { } forged)
            {
                return new AuditScan(chain, complete, torn, matched, forged);
            }
        }

        if (pending.Count > 0)
        {
            var anchor = pending[^1];
            var unverifiable = chain.KnownKey(anchor.Checkpoint.KeyId) is null && trust.Find(anchor.Checkpoint.KeyId) is null
                ? $" (its key {anchor.Checkpoint.KeyId} is not among the log's keys, so its signature could not be checked: a key the log handed over to after this copy, or a forgery)"
                : string.Empty;
            var problem = anchor.External
                ? new AuditProblem(AuditProblemKinds.RolledBack, chain.Count + 1, chain.Count, string.Create(CultureInfo.InvariantCulture,
                    $"the log holds {chain.Count} entries, fewer than the {anchor.Checkpoint.Size} that {anchor.Name} (signed {anchor.Checkpoint.Time}) covers: rolled back to an older state, or truncated{unverifiable}"))
                : new AuditProblem(AuditProblemKinds.Truncated, chain.Count + 1, chain.Count, string.Create(CultureInfo.InvariantCulture,
                    $"the log holds {chain.Count} entries but {anchor.Name} (signed {anchor.Checkpoint.Time}) covers {anchor.Checkpoint.Size}: truncated"));
            return new AuditScan(chain, complete, torn, matched, problem);
        }

        return new AuditScan(chain, complete, torn, matched, null);
    }

    // A checkpoint kept elsewhere must be signed by a key of the log's chain (as read so far), or,
    // beyond the log's end, by one the verifier trusts; else it is forged, or the log's keys were replaced.
    private static AuditProblem? Unsigned(AuditAnchor anchor, AuditChain chain, AuditKeyTrust trust, long line)
    {
        var checkpoint = anchor.Checkpoint;
        var key = chain.KnownKey(checkpoint.KeyId) ?? trust.Find(checkpoint.KeyId);
        if (key is null)
        {
            return new AuditProblem(AuditProblemKinds.BadSignature, line, null,
                $"{anchor.Name} (signed {checkpoint.Time}) is signed by audit key {checkpoint.KeyId}, which is none of the log's keys: the log was rewritten under other keys, or the checkpoint is forged or from another proxy");
        }

        return key.Verifies(checkpoint) ? null : new AuditProblem(AuditProblemKinds.BadSignature, line, null,
            string.Create(CultureInfo.InvariantCulture, $"{anchor.Name} (of {checkpoint.Size} entries) has a signature that does not verify with audit key {key.KeyId}: forged or altered"));
    }

    public static FileStream OpenShared(string path) =>
        new(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite | FileShare.Delete, BufferSize = 0 });

    // An entry out of place was either deleted (the expected one is nowhere after it) or moved.
    private static AuditProblem Misplaced(string logPath, long expected, long found, long line, int maxEntryBytes, long? length)
    {
        if (found < expected)
        {
            return new AuditProblem(AuditProblemKinds.Reordered, line, expected,
                string.Create(CultureInfo.InvariantCulture, $"line {line} holds entry {found} again where entry {expected} belongs: entries were reordered or duplicated"));
        }

        using var stream = OpenShared(logPath);
        foreach (var later in AuditLogLines.Read(stream, 0, length ?? stream.Length, maxEntryBytes).Where(l => l.Number > line && l.Complete && !l.TooLong))
        {
            if (SequenceOf(later.Bytes.Span) == expected)
            {
                return new AuditProblem(AuditProblemKinds.Reordered, line, expected, string.Create(CultureInfo.InvariantCulture,
                    $"entries are out of order: line {line} holds entry {found} where entry {expected} belongs, and entry {expected} is at line {later.Number}: reordered"));
            }
        }

        return new AuditProblem(AuditProblemKinds.Deleted, line, expected, found == expected + 1
            ? string.Create(CultureInfo.InvariantCulture, $"entry {expected} is missing: line {line} holds entry {found}: deleted")
            : string.Create(CultureInfo.InvariantCulture, $"entries {expected} to {found - 1} are missing: line {line} holds entry {found}: deleted"));
    }

    private static long? SequenceOf(ReadOnlySpan<byte> line)
    {
        try
        {
            using var document = JsonDocument.Parse(line.ToArray());
            return document.RootElement.TryGetProperty("seq", out var seq) && seq.TryGetInt64(out var value) ? value : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>One line of a log file as read: complete (ended by a newline) or the torn remainder.</summary>
internal sealed record AuditLogLine(long Number, long Offset, long Length, ReadOnlyMemory<byte> Bytes, bool Complete, bool TooLong);

/// <summary>Splits a log file into lines without holding more than one entry's bytes.</summary>
internal static class AuditLogLines
{
    public static IEnumerable<AuditLogLine> Read(Stream stream, long start, long end, int maxEntryBytes)
    {
        stream.Position = start;
        var buffer = new byte[1 << 16];
        var current = new MemoryStream();
        var tooLong = false;
        long lineStart = start;
        long position = start;
        long number = 0;
        while (position < end)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, end - position));
            if (read == 0)
            {
                break;
            }

            var from = 0;
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    continue;
                }

                Append(current, buffer.AsSpan(from, i - from), maxEntryBytes, ref tooLong);
                number++;
                yield return new AuditLogLine(number, lineStart, position + i - lineStart, tooLong ? ReadOnlyMemory<byte>.Empty : current.ToArray(), Complete: true, tooLong);
                current.SetLength(0);
                tooLong = false;
                lineStart = position + i + 1;
                from = i + 1;
            }

            Append(current, buffer.AsSpan(from, read - from), maxEntryBytes, ref tooLong);
            position += read;
        }

        if (position > lineStart)
        {
            yield return new AuditLogLine(number + 1, lineStart, position - lineStart, tooLong ? ReadOnlyMemory<byte>.Empty : current.ToArray(), Complete: false, tooLong);
        }
    }

    private static void Append(MemoryStream current, ReadOnlySpan<byte> bytes, int maxEntryBytes, ref bool tooLong)
    {
        if (tooLong || current.Length + bytes.Length > maxEntryBytes)
        {
            tooLong = true;
            return;
        }

        current.Write(bytes);
    }
}

/// <summary>Checkpoint files: the proxy's latest (audit/checkpoint.json) and the ones an auditor keeps.</summary>
internal static class AuditCheckpointFile
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static string ToJson(AuditCheckpoint checkpoint) => JsonSerializer.Serialize(checkpoint, Json) + "\n";

    /// <summary>Reads a checkpoint file; anything but a well-formed checkpoint is refused with a message naming the file.</summary>
    public static AuditCheckpoint Read(string path) => Parse(File.ReadAllText(path), $"'{path}'");

    /// <summary>Reads a checkpoint's JSON; <paramref name="name"/> says in messages where it came from.</summary>
    public static AuditCheckpoint Parse(string json, string name)
    {
        Document? document;
        try
        {
            document = JsonSerializer.Deserialize<Document>(json, Json);
        }
        catch (JsonException)
        {
            throw new FormatException($"{name} is not a checkpoint (not JSON)");
        }

        if (document is not { Format: AuditCheckpoint.FormatName, KeyId: { } keyId, Size: > 0 and var size, Root: { Length: AuditHashes.Length * 2 } root, Time: { } time, Signature: { } signature })
        {
            throw new FormatException($"{name} is not a '{AuditCheckpoint.FormatName}' with keyId, size, root, time and signature");
        }

        return new AuditCheckpoint(keyId, size, root, time, signature);
    }

    private sealed record Document(string? Format, string? KeyId, long Size, string? Root, string? Time, string? Signature);
}
