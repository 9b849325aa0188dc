using System.Text.Json.Nodes;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.Audit;

/// <summary>What an entry records: its kind and kind-specific data.</summary>
public sealed record AuditEvent(string Kind, JsonObject Data);

/// <summary>The kinds of entry the proxy writes.</summary>
public static class AuditKinds
{
    public const string Decision = "decision";
    public const string Upload = "upload";
    public const string UploadDuplicate = "upload-duplicate";
    public const string UploadRefused = "upload-refused";
    public const string Retrieve = "retrieve";
    public const string Delete = "delete";
    public const string CaCreate = "ca-create";
    public const string CaIssue = "ca-issue";
    public const string CaRevoke = "ca-revoke";
    public const string CaKeyPassphrase = "ca-key-passphrase";
    public const string CaIntermediate = "ca-intermediate";
    public const string PolicyChange = "policy-change";
    public const string Checkpoint = "checkpoint";
    public const string AuditKey = "audit-key";
    public const string Repair = "audit-repair";
    public const string ObjectFormatMigration = "object-format-migration";
    public const string PatientLinkage = "patient-linkage";
    public const string KeySplit = "key-split";
    public const string BackupRestored = "backup-restored";
    public const string KeyRotation = "key-rotation";
    public const string Export = "export";
}

/// <summary>
/// The entries of each kind, built in one place so that what reaches the log is reviewed in one
/// place: records appear by handle and patient pseudonym, never by a patient's name or identifier;
/// requests by route pattern, never by query string (which may carry a patient ID).
/// </summary>
internal static class AuditEvents
{
    public static AuditEvent Decision(PolicyRequest request, PolicyDecision decision) => new(AuditKinds.Decision, new JsonObject
    {
        ["action"] = request.Action.ToString(),
        ["resource"] = request.Resource,
        ["purpose"] = request.Context.Purpose.ToString().ToLowerInvariant(),
        ["result"] = decision.Permitted ? "permit" : "deny",
        ["rule"] = decision.Rule,
        ["reason"] = decision.Reason,
        ["view"] = decision.Permitted ? decision.Obligations.View.ToString().ToLowerInvariant() : null,
        ["fingerprint"] = decision.Permitted ? decision.Obligations.Fingerprint : null,
        ["record"] = request.Record?.Handle,
        ["patient"] = request.Record?.PatientPseudonym,
        ["policy"] = decision.PolicyVersion.Length > 0 ? decision.PolicyVersion : null,
        ["breakGlass"] = decision.BreakGlass ? true : null,

        // The justification is free text a clinician typed and may name the patient: the audit log
        // binds it by its digest; the text itself is in the decision log.
        ["justificationSha256"] = decision.BreakGlass && request.Context.BreakGlassJustification is { } justification
            ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(justification)))
            : null,
    });

    /// <param name="entry">The new record.</param>
    /// <param name="replaces">Records of the same instance with other content that it replaces (DuplicateInstance = replace); each is deleted after it, with its own entry.</param>
    public static AuditEvent Upload(RecordEntry entry, IReadOnlyList<string>? replaces = null)
    {
        var data = new JsonObject
        {
            ["record"] = entry.Handle,
            ["patient"] = entry.PatientPseudonym,
            ["origin"] = entry.OriginOrganisation,
            ["modality"] = entry.Modality,
            ["sopClass"] = entry.SopClassUid,
            ["bytes"] = entry.PlaintextLength,
            ["sha256"] = Convert.ToHexStringLower(entry.OriginalDigest),
            ["seal"] = entry.Seal.ToString().ToLowerInvariant(),
        };
        if (replaces is { Count: > 0 })
        {
            data["replaces"] = new JsonArray(replaces.Select(h => (JsonNode?)JsonValue.Create(h)).ToArray());
        }

        return new(AuditKinds.Upload, data);
    }

    /// <summary>The same file sent again by the organisation that stored it: answered with the existing record, nothing kept.</summary>
    public static AuditEvent UploadDuplicate(RecordEntry existing) => new(AuditKinds.UploadDuplicate, new JsonObject
    {
        ["record"] = existing.Handle,
        ["patient"] = existing.PatientPseudonym,
        ["origin"] = existing.OriginOrganisation,
        ["sha256"] = Convert.ToHexStringLower(existing.OriginalDigest),
    });

    /// <param name="origin">The uploading organisation.</param>
    /// <param name="reason">One of <see cref="UploadRefusals"/>: why, without anything read from the file.</param>
    /// <param name="existingRecord">For a refused duplicate, the record kept.</param>
    public static AuditEvent UploadRefused(string origin, string reason, string? existingRecord) => new(AuditKinds.UploadRefused, new JsonObject
    {
        ["origin"] = origin,
        ["reason"] = reason,
        ["record"] = existingRecord,
    });

    /// <param name="entry">The record handed out.</param>
    /// <param name="view">"original" or "deidentified:&lt;profile&gt;".</param>
    /// <param name="copy">Whether the copy carries a fingerprint (the <c>Watermark</c> header's value).</param>
    /// <param name="egressRequest">The request the copy's fingerprint names (an oblivious transfer's session), when there is one.</param>
    public static AuditEvent Retrieve(RecordEntry entry, string view, string copy, string? egressRequest) => new(AuditKinds.Retrieve, new JsonObject
    {
        ["record"] = entry.Handle,
        ["patient"] = entry.PatientPseudonym,
        ["origin"] = entry.OriginOrganisation,
        ["view"] = view,
        ["copy"] = copy,
        ["egress"] = egressRequest,
    });

    /// <summary>
    /// An export about to be sent (docs/export.md): the bundle, who it is encrypted to (the
    /// recipient certificate's serial and organisation, its key's SHA-256 identifier) and the set it
    /// carries, record by record (handle, origin, patient pseudonym and view; never an identifier).
    /// Each record's copy also has its own retrieve entry, naming this request as its egress.
    /// </summary>
    public static AuditEvent Export(string bundleId, string recipientSerial, string? recipientOrganisation, string recipientKeyId, string egressRequest, IReadOnlyList<(RecordEntry Entry, string View)> records)
    {
        var set = new JsonArray();
        foreach (var (entry, view) in records)
        {
            set.Add(new JsonObject
            {
                ["record"] = entry.Handle,
                ["patient"] = entry.PatientPseudonym,
                ["origin"] = entry.OriginOrganisation,
                ["view"] = view,
            });
        }

        return new(AuditKinds.Export, new JsonObject
        {
            ["bundle"] = bundleId,
            ["recipient"] = recipientSerial,
            ["recipientOrganisation"] = recipientOrganisation,
            ["recipientKey"] = recipientKeyId,
            ["egress"] = egressRequest,
            ["records"] = set,
        });
    }

    public static AuditEvent Delete(RecordEntry entry) => new(AuditKinds.Delete, new JsonObject
    {
        ["record"] = entry.Handle,
        ["patient"] = entry.PatientPseudonym,
        ["origin"] = entry.OriginOrganisation,
    });

    /// <summary>An administrator started (or asked again for) the object-format migration.</summary>
    public static AuditEvent ObjectFormatMigrationStart(long legacyRecords, double recordsPerHour) => new(AuditKinds.ObjectFormatMigration, new JsonObject
    {
        ["step"] = "start",
        ["legacyRecords"] = legacyRecords,
        ["recordsPerHour"] = recordsPerHour,
    });

    /// <summary>The migration is about to read a record (and move it to the masked format).</summary>
    public static AuditEvent ObjectFormatMigrationRecord(RecordEntry entry) => new(AuditKinds.ObjectFormatMigration, new JsonObject
    {
        ["step"] = "record",
        ["record"] = entry.Handle,
        ["patient"] = entry.PatientPseudonym,
        ["origin"] = entry.OriginOrganisation,
    });

    public static AuditEvent CaCreate(string serial, string subject, DateTimeOffset notAfter) => new(AuditKinds.CaCreate, new JsonObject
    {
        ["serial"] = serial,
        ["subject"] = subject,
        ["notAfter"] = AuditHashes.Time(notAfter),
    });

    public static AuditEvent CaIssue(string serial, string kind, string subject, string? organisation, string? role, DateTimeOffset notAfter) => new(AuditKinds.CaIssue, new JsonObject
    {
        ["serial"] = serial,
        ["certificate"] = kind,
        ["subject"] = subject,
        ["organisation"] = organisation,
        ["role"] = role,
        ["notAfter"] = AuditHashes.Time(notAfter),
    });

    /// <summary>The master key was dealt to custodians: which split, how many shares, how many rebuild it; never a share.</summary>
    public static AuditEvent KeySplit(string installationId, string splitId, int threshold, int shares) => new(AuditKinds.KeySplit, new JsonObject
    {
        ["installation"] = installationId,
        ["split"] = splitId,
        ["threshold"] = threshold,
        ["shares"] = shares,
    });

    /// <summary>A key-encryption-key rotation began (or resumed after a crash or a stop): the version it re-wraps to and how much is left; never a key.</summary>
    public static AuditEvent KeyRotationStart(long targetVersion, bool resumed, long remaining, long rewrappedBefore, int batchSize) => new(AuditKinds.KeyRotation, new JsonObject
    {
        ["step"] = resumed ? "resume" : "start",
        ["version"] = targetVersion,
        ["remaining"] = remaining,
        ["rewrappedBefore"] = rewrappedBefore,
        ["batchSize"] = batchSize,
    });

    public static AuditEvent KeyRotationProgress(long targetVersion, int pass, long rewrapped, long conflicts) => new(AuditKinds.KeyRotation, new JsonObject
    {
        ["step"] = "progress",
        ["version"] = targetVersion,
        ["pass"] = pass,
        ["rewrapped"] = rewrapped,
        ["conflicts"] = conflicts,
    });

    /// <summary>A rotation run ended: what it re-wrapped, which versions it retired, what (if anything) is left and which records could not be re-wrapped.</summary>
    public static AuditEvent KeyRotationFinish(KeyRotation.KeyRotationResult result) => new(AuditKinds.KeyRotation, new JsonObject
    {
        ["step"] = result.Complete ? "finish" : "incomplete",
        ["version"] = result.TargetVersion,
        ["rewrapped"] = result.Rewrapped,
        ["conflicts"] = result.Conflicts,
        ["remaining"] = result.Remaining,
        ["retired"] = new JsonArray(result.Retired.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
        ["unreadable"] = result.Unreadable.Count == 0 ? null : new JsonArray(result.Unreadable.Take(100).Select(h => (JsonNode?)JsonValue.Create(h)).ToArray()),
        ["seconds"] = Math.Round(result.Elapsed.TotalSeconds, 3),
    });

    /// <summary>The proxy was rebuilt from a backup generation (tproxy recover): the first entry after the restored ones.</summary>
    public static AuditEvent BackupRestored(string installationId, long generation, DateTimeOffset backupPoint, long records) => new(AuditKinds.BackupRestored, new JsonObject
    {
        ["installation"] = installationId,
        ["generation"] = generation,
        ["backupPoint"] = backupPoint.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        ["records"] = records,
    });

    /// <summary>The CA key re-encrypted: under which passphrase source now (never the passphrase), and whether an old key file was removed.</summary>
    /// <summary>An issuing intermediate signed by the offline root: at <c>tproxy ca init</c> (no previous) or a rotation.</summary>
    public static AuditEvent CaIntermediate(string serial, string subject, DateTimeOffset notAfter, string? previousSerial) => new(AuditKinds.CaIntermediate, new JsonObject
    {
        ["serial"] = serial,
        ["subject"] = subject,
        ["notAfter"] = AuditHashes.Time(notAfter),
        ["step"] = previousSerial is null ? "create" : "rotate",
        ["previous"] = previousSerial,
    });

    public static AuditEvent CaKeyPassphrase(string source, bool keyFileRemoved) => new(AuditKinds.CaKeyPassphrase, new JsonObject
    {
        ["source"] = source,
        ["keyFileRemoved"] = keyFileRemoved,
    });

    public static AuditEvent CaRevoke(string serial, string reason) => new(AuditKinds.CaRevoke, new JsonObject
    {
        ["serial"] = serial,
        ["reason"] = reason,
    });

    public static AuditEvent PolicyChange(string versionHash, IReadOnlyList<string> files, string? previousVersionHash) => new(AuditKinds.PolicyChange, new JsonObject
    {
        ["version"] = versionHash,
        ["previous"] = previousVersionHash,
        ["files"] = new JsonArray([.. files.Select(f => (JsonNode?)JsonValue.Create(f))]),
    });

    public static AuditEvent Checkpoint(AuditCheckpoint checkpoint) => new(AuditKinds.Checkpoint, new JsonObject
    {
        ["size"] = checkpoint.Size,
        ["root"] = checkpoint.Root,
        ["keyId"] = checkpoint.KeyId,
        ["signature"] = checkpoint.Signature,
    });

    /// <summary>The log's checkpoints change key (docs/audit-log.md, "Keys"): signed by the previous key and by the next.</summary>
    public static AuditEvent AuditKeyHandover(AuditSigningKey previous, AuditSigningKey next, string reason)
    {
        var signed = Audit.AuditKeyHandover.SignedBytes(previous.PublicKey.KeyId, next.PublicKey.KeyId, next.PublicKey.SubjectPublicKeyInfoBase64);
        return new(AuditKinds.AuditKey, new JsonObject
        {
            ["step"] = reason,
            ["previous"] = previous.PublicKey.KeyId,
            ["keyId"] = next.PublicKey.KeyId,
            ["publicKey"] = next.PublicKey.SubjectPublicKeyInfoBase64,
            ["endorsement"] = previous.SignText(signed),
            ["possession"] = next.SignText(signed),
        });
    }

    public static AuditEvent Repair(long offset, long bytes, string sha256, string savedAs) => new(AuditKinds.Repair, new JsonObject
    {
        ["offset"] = offset,
        ["bytes"] = bytes,
        ["sha256"] = sha256,
        ["savedAs"] = savedAs,
    });

    /// <summary>At start-up with TrustedProxy:Pseudonymization:LinkPatientsAcrossOrganisations on: the same Patient ID is one patient whoever sent it.</summary>
    public static AuditEvent PatientLinkage() => new(AuditKinds.PatientLinkage, new JsonObject
    {
        ["setting"] = "TrustedProxy:Pseudonymization:LinkPatientsAcrossOrganisations",
        ["linked"] = true,
        ["effect"] = "one Patient ID is one patient pseudonym, consent subject and research pseudonym across issuers and organisations",
    });
}

/// <summary>Why an upload was refused, as the audit log and logs name it (stable words, no file content).</summary>
internal static class UploadRefusals
{
    public const string OtherStudy = "other-study";
    public const string DuplicateInstance = "duplicate-instance";
    public const string NotDicomPart = "not-dicom-part";
    public const string TooLarge = "too-large";
    public const string Failed = "failed";

    /// <summary>"invalid-dicom:&lt;problem&gt;" (the reader's problem kind, e.g. Truncated, NotPart10, ExecutablePreamble).</summary>
    public static string Of(Dicom.DicomFormatException format) => $"invalid-dicom:{format.Problem}";
}
