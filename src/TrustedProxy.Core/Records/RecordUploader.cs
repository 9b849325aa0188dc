using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.IO;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;
using TrustedProxy.Watermarking;

using TrustedProxy.Telemetry;

namespace TrustedProxy.Records;

/// <summary>A well-formed file refused for what it is (for example, an instance of another study than the request names).</summary>
public sealed class UploadRejectedException(string reason, string? sopClassUid, string? sopInstanceUid) : Exception(reason)
{
    public string? SopClassUid { get; } = sopClassUid;

    public string? SopInstanceUid { get; } = sopInstanceUid;
}

/// <summary>
/// The organisation already stored an instance under this SOP Instance UID with other content, and
/// the configuration (TrustedProxy:Records:DuplicateInstance = keep-first) keeps the first.
/// </summary>
public sealed class DuplicateInstanceException(string existingHandle, string? sopClassUid, string? sopInstanceUid)
    : Exception($"an instance with this SOP Instance UID is already stored as record {existingHandle} with other content; it is kept (TrustedProxy:Records:DuplicateInstance = keep-first)")
{
    public string ExistingHandle { get; } = existingHandle;

    public string? SopClassUid { get; } = sopClassUid;

    public string? SopInstanceUid { get; } = sopInstanceUid;
}

/// <summary>What the uploader tells the producer.</summary>
/// <param name="Handle">The new record's handle.</param>
/// <param name="SopInstanceUid">The instance it holds.</param>
/// <param name="StudyInstanceUid">The study it belongs to.</param>
/// <param name="SeriesInstanceUid">The series it belongs to.</param>
/// <param name="SopClassUid">Its SOP class.</param>
/// <param name="Length">Bytes stored (after any preamble change).</param>
/// <param name="Warnings">What the proxy changed or noticed, in words.</param>
/// <param name="Seal">How the record's integrity and origin are bound.</param>
/// <param name="SealDetail">Why, in words (no patient data).</param>
public sealed record UploadReceipt(string Handle, string? SopInstanceUid, string? StudyInstanceUid, string? SeriesInstanceUid, string? SopClassUid, long Length, IReadOnlyList<string> Warnings, RecordSealKind Seal = RecordSealKind.None, string? SealDetail = null)
{
    /// <summary>The same file was already stored by the same organisation: <see cref="Handle"/> is that record's, and nothing new was kept.</summary>
    public bool AlreadyStored { get; init; }

    /// <summary>Records of the same instance with other content that this upload replaced (deleted), under DuplicateInstance = replace.</summary>
    public IReadOnlyList<string> Replaced { get; init; } = [];
}

/// <summary>
/// The upload path, in the order the data meets it: the preamble is checked for an executable
/// header, then a file up to the watermarking in-memory limit is read whole, hashed once (the
/// original's SHA-256) and walked once by the DICOM reader, which refuses a malformed file and
/// gives both the header and the file the seal works on. The header is judged at once (the study
/// the request names, the record-level policy, an instance already stored), so that a refused
/// upload is never sealed, encrypted or written. Then it is sealed (<see cref="RecordWatermarks"/>):
/// in its pixels, so that what is stored and encrypted is the sealed file, or else by a detached
/// seal kept in the index; and encrypted under a fresh data key into a cache file on local disk,
/// padded with random bytes to the padding scheme's blocks and made durable (file and directory
/// fsync'd). A larger file streams through unsealed, encrypted as the reader walks it, and is
/// judged once it has been read whole. Only when the whole file is read, valid
/// and sealed does anything become visible: one index transaction writes the record (its header
/// sealed as metadata) and its blocks, each under a fresh random object name. With the upload cache
/// on, that is the acknowledgement and the blocks go to the backend later, on the cache's schedule;
/// write-through, the blocks are put first. Before the index transaction the upload is appended to
/// the audit log and made durable there; if it cannot be, the cache file goes and nothing else was
/// written. Any failure before acknowledgement leaves nothing behind.
///
/// An instance is stored once per organisation: once its header is read and the upload permitted,
/// the uploader takes a lock on (origin organisation, SOP Instance UID), held until the record is
/// acknowledged, and looks the instance up. The same file again (same SHA-256 of the original) is
/// answered with the existing record and nothing is kept; another file under the same UID is refused
/// or replaces the old record, as TrustedProxy:Records:DuplicateInstance says. The lock lives in this
/// process, which is enough because one proxy owns its data directory; the index's SOP index is not
/// unique so that indexes holding duplicates from before still open.
/// </summary>
internal sealed partial class RecordUploader(
    RecordIndex index,
    BlockIndex blocks,
    BlockWriter writer,
    UploadCacheEngine cache,
    IObjectStore store,
    ProxyKeyRing keys,
    IdentifierPseudonymizer pseudonymizer,
    DeidentificationKeys deidentificationKeys,
    StagingArea staging,
    RecordWatermarks watermarks,
    AuditLog audit,
    RecordDeleter deleter,
    LocalStorageSpace space,
    IOptions<RecordStoreOptions> options,
    IOptions<DicomReaderLimits> dicomLimits,
    TimeProvider time,
    IMeterFactory meters,
    ILogger<RecordUploader> logger)
{
    private readonly Counter<long> _seals = meters.Create("TrustedProxy.Records")
        .CreateCounter<long>("trustedproxy.records.ingest_seals", "{file}", "Uploads sealed and encrypted into the staging area (an upload refused at its header is not)");

    /// <summary>
    /// Stores one file; with <paramref name="expectedStudyInstanceUid"/>, a file of another study is
    /// rejected before anything is kept. <paramref name="authorize"/> is the record-level policy
    /// decision, asked once the header is read and before anything is kept; it throws to refuse.
    /// </summary>
    public async Task<UploadReceipt> UploadAsync(Stream body, FederationIdentity origin, Func<RecordAttributes, CancellationToken, Task> authorize, CancellationToken cancellationToken, string? expectedStudyInstanceUid = null)
    {
        // A refused upload is in the audit log as a permitted one is (a policy refusal is already
        // there as its decision); the entry names the reason and never the file's identifiers.
        using var span = ProxyTracing.Start("upload");
        try
        {
            var receipt = await StoreAsync(body, origin, authorize, cancellationToken, expectedStudyInstanceUid).ConfigureAwait(false);
            span?.SetTag(ProxyTracing.Bytes, receipt.Length);
            span?.SetTag(ProxyTracing.Outcome, receipt.AlreadyStored ? "duplicate" : "stored");
            return receipt;
        }
        catch (Exception ex) when (span is not null && Refused(span, ex))
        {
            throw;
        }
        catch (DicomFormatException format)
        {
            await audit.AppendAsync(AuditEvents.UploadRefused(origin.Organisation, UploadRefusals.Of(format), null)).ConfigureAwait(false);
            throw;
        }
        catch (UploadRejectedException)
        {
            await audit.AppendAsync(AuditEvents.UploadRefused(origin.Organisation, UploadRefusals.OtherStudy, null)).ConfigureAwait(false);
            throw;
        }
        catch (DuplicateInstanceException duplicate)
        {
            await audit.AppendAsync(AuditEvents.UploadRefused(origin.Organisation, UploadRefusals.DuplicateInstance, duplicate.ExistingHandle)).ConfigureAwait(false);
            throw;
        }
    }

    // Names the refusal on the span (its kind, never its message, which may quote the file); never catches.
    private static bool Refused(Activity span, Exception ex)
    {
        span.SetTag(ProxyTracing.Outcome, ex.GetType().Name);
        span.SetStatus(ActivityStatusCode.Error);
        return false;
    }

    private readonly KeyedLock<(string Organisation, string SopInstanceUid)> _instances = new();

    /// <summary>What a large upload may hold in memory beyond its header's limit before it is decided on (the reader's buffering).</summary>
    private const long DecisionHoldSlackBytes = 1 << 20;

    private async Task<UploadReceipt> StoreAsync(Stream body, FederationIdentity origin, Func<RecordAttributes, CancellationToken, Task> authorize, CancellationToken cancellationToken, string? expectedStudyInstanceUid)
    {
        var handle = RecordHandle.New();
        var envelopeIndex = ObjectName.NewRandom();
        using var dataKey = DataKey.CreateRandom();

        var (checkedBody, preamble) = await PreambleGuard.InspectAsync(body, dicomLimits.Value.ExecutablePreamble, cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var fields = new SealFields(handle, origin.Organisation, now);
        var (whole, rest) = await ReadWholeAsync(checkedBody, watermarks.Options.MaxInMemoryBytes, cancellationToken).ConfigureAwait(false);
        IngestSeal? seal = null;
        DicomHeader header;
        long plaintextLength;
        BlockLayout layout;
        byte[] digest;
        IDisposable? instanceLock = null;
        IReadOnlyList<RecordEntry> replaced = [];
        RecordEntry? alreadyStored = null;
        FileStream? staged = null;
        try
        {
            if (whole is not null)
            {
                // In memory: read once (header and, for the seal, the whole file), hashed once, and
                // judged before anything is sealed, encrypted or written.
                var length = (int)whole.Length;
                var upload = whole.GetBuffer();
                var original = SHA256.HashData(upload.AsSpan(0, length));
                (DicomFile File, DicomHeader Header, int PixelDataOffset)? read;
                using (ProxyTracing.Start("dicom.read"))
                {
                    read = await DicomFile.ReadUploadAsync(upload, length, dicomLimits.Value, cancellationToken).ConfigureAwait(false);
                    header = read?.Header ?? await DicomHeader.ReadAsync(new MemoryStream(upload, 0, length, writable: false), dicomLimits.Value, cancellationToken).ConfigureAwait(false);
                }

                using (ProxyTracing.Start("record.admit"))
                {
                    (instanceLock, replaced, alreadyStored) = await AdmitAsync(header, origin, original, authorize, handle, expectedStudyInstanceUid, cancellationToken).ConfigureAwait(false);
                }

                if (alreadyStored is not null)
                {
                    // Nothing new is kept: no seal, no cache file.
                    digest = original;
                    plaintextLength = length;
                    layout = default;
                }
                else
                {
                    using (ProxyTracing.Start("seal"))
                    {
                        seal = read is { } file
                            ? await watermarks.SealParsedAsync(file.File, file.PixelDataOffset, upload, length, fields, original, cancellationToken).ConfigureAwait(false)
                            : await watermarks.SealAsync(upload, length, fields, cancellationToken, original).ConfigureAwait(false);
                    }

                    _seals.Add(1);

                    // Only a seal in the pixels changes the bytes; otherwise what is stored is the upload.
                    digest = seal.Kind == RecordSealKind.Pixels ? SHA256.HashData(seal.Stored.AsSpan(0, seal.StoredLength)) : original;
                    plaintextLength = seal.StoredLength;
                    using (ProxyTracing.Start("encrypt"))
                    {
                        staged = staging.Create(handle);
                        layout = await EncryptAndPadAsync(staged, dataKey, envelopeIndex, seal.Stored.AsMemory(0, seal.StoredLength), cancellationToken).ConfigureAwait(false);
                    }

                }
            }
            else
            {
                // Larger than the in-memory limit: it streams through unsealed (a whole-file seal over
                // its digest) and is encrypted as it is read. The record is decided on as soon as its
                // identifying attributes are read, before its bulk data: until then what is read is
                // held in memory, so a refused upload leaves no cache file and is not encrypted.
                EnvelopeEncryptingStream? envelope = null;
                var gate = new DecisionGate(dicomLimits.Value.MaxHeaderBytes + DecisionHoldSlackBytes, async token =>
                {
                    staged = staging.Create(handle);
                    return envelope = new EnvelopeEncryptingStream(staged, dataKey, envelopeIndex.ToBytes(), options.Value.SegmentSize, leaveOpen: true);
                });
                try
                {
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    var tee = new TeeReadStream(rest!, gate, hash);
                    header = await DicomHeader.ReadAsync(tee, dicomLimits.Value, async (identified, token) =>
                    {
                        await DecideAsync(identified, origin, authorize, handle, expectedStudyInstanceUid, token).ConfigureAwait(false);
                        await gate.OpenAsync(token).ConfigureAwait(false);
                    }, cancellationToken).ConfigureAwait(false);

                    await envelope!.CompleteAsync(cancellationToken).ConfigureAwait(false);
                    plaintextLength = envelope.PlaintextLength;
                    digest = hash.GetHashAndReset();
                }
                finally
                {
                    if (envelope is not null)
                    {
                        await envelope.DisposeAsync().ConfigureAwait(false);
                    }
                }

                (instanceLock, replaced, alreadyStored) = await AdmitInstanceAsync(header, origin, digest, cancellationToken).ConfigureAwait(false);
                layout = cache.Padding.Layout(staged!.Length);
                if (alreadyStored is null)
                {
                    await PadAsync(staged, layout, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            var written = staging.LengthOf(handle);
            await DisposeAsync(staged).ConfigureAwait(false);
            staging.Delete(handle);
            instanceLock?.Dispose();
            if (LocalStorageSpace.IsFull(ex))
            {
                // The disk filled under the cache file; it is gone again, and the client may retry later.
                throw space.Refused(ex, written);
            }

            throw;
        }

        using var held = instanceLock;
        if (alreadyStored is not null)
        {
            await DisposeAsync(staged).ConfigureAwait(false);
            staging.Delete(handle);
            await audit.AppendAsync(AuditEvents.UploadDuplicate(alreadyStored)).ConfigureAwait(false);
            LogAlreadyStored(logger, alreadyStored.Handle);
            return new UploadReceipt(alreadyStored.Handle, alreadyStored.SopInstanceUid, alreadyStored.StudyInstanceUid, alreadyStored.SeriesInstanceUid, alreadyStored.SopClassUid, alreadyStored.PlaintextLength, preamble is null ? [] : [preamble.Message], alreadyStored.Seal, alreadyStored.SealDetail)
            {
                AlreadyStored = true,
            };
        }

        RecordEntry entry;
        try
        {
            entry = await NewEntryAsync().ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync(staged).ConfigureAwait(false);
            staging.Delete(handle);
            throw;
        }

        async Task<RecordEntry> NewEntryAsync()
        {
            var patientKey = deidentificationKeys.PatientKey(header.Dataset, origin.Organisation);
            return new RecordEntry
            {
                Handle = handle,
                ObjectName = envelopeIndex,
                WrappedKey = keys.KeyEncryptionKeys.Wrap(dataKey, handle, await index.CurrentKeyVersionAsync().ConfigureAwait(false)),
                PatientPseudonym = PatientPseudonym(header, origin),
                PatientIdMatch = header.PatientId is null ? null : pseudonymizer.PatientIdMatch(header.PatientId),
                AccessionPseudonym = header.AccessionNumber is { Length: > 0 } accession ? pseudonymizer.Accession(accession) : null,
                ResearchPseudonym = deidentificationKeys.ResearchPseudonym(patientKey),
                DeidentifiedStudyUid = header.StudyInstanceUid is { } study ? deidentificationKeys.ReplacementUid(study) : null,
                DeidentifiedSeriesUid = header.SeriesInstanceUid is { } series ? deidentificationKeys.ReplacementUid(series) : null,
                DeidentifiedSopInstanceUid = header.SopInstanceUid is { } sop ? deidentificationKeys.ReplacementUid(sop) : null,
                SeriesNumber = header.SeriesNumber,
                InstanceNumber = header.InstanceNumber,
                SealedMetadata = RecordMetadataSealer.Seal(dataKey, handle, await header.ToMetadataFileAsync(cancellationToken: cancellationToken).ConfigureAwait(false)),
                StudyInstanceUid = header.StudyInstanceUid,
                SeriesInstanceUid = header.SeriesInstanceUid,
                SopInstanceUid = header.SopInstanceUid,
                SopClassUid = header.SopClassUid,
                Modality = header.Modality,
                StudyDate = header.StudyDate,
                TransferSyntaxUid = header.TransferSyntaxUid,
                PlaintextLength = plaintextLength,
                StoredLength = layout.StoredLength,
                ContentSha256 = digest,
                OriginOrganisation = origin.Organisation,
                State = cache.Enabled ? RecordState.Cached : RecordState.Staged,
                CreatedAt = now,
                Seal = seal?.Kind ?? RecordSealKind.WholeFile,
                DetachedSeal = seal?.DetachedSeal ?? watermarks.SealWholeFile(new SealFields(handle, origin.Organisation, now), digest),
                SealDetail = seal?.Detail ?? LargeFileDetail,
                OriginalSha256 = seal?.OriginalSha256 ?? digest,
            };
        }

        var newBlocks = Enumerable.Range(0, layout.Count).Select(i => CacheBlock.Waiting(handle, i, layout.Length, now, cache.DrawDeadline(now))).ToList();

        try
        {
            // The audit entry and the cache file are made durable together (the audit log syncs on
            // its own thread while this one syncs the cache file and its directory), both before the
            // index transaction that makes the record visible. A failure of either takes the cache
            // file back; an audit entry already durable then names an upload never acknowledged, as
            // after a crash before the index transaction.
            var audited = audit.AppendAsync(AuditEvents.Upload(entry, replaced.Select(r => r.Handle).ToList()));
            await Task.WhenAll(audited, PersistAsync(staged!)).ConfigureAwait(false);
            var ids = await index.InsertAsync(entry, newBlocks).ConfigureAwait(false);
            newBlocks = newBlocks.Select((b, i) => b with { Id = ids[i] }).ToList();
        }
        catch (Exception ex)
        {
            await DisposeAsync(staged).ConfigureAwait(false);
            staging.Delete(handle);
            if (LocalStorageSpace.IsFull(ex))
            {
                // The index's transaction rolled back (SQLITE_FULL): no row, and now no cache file.
                throw space.Refused(ex, layout.StoredLength);
            }

            throw;
        }

        if (cache.Enabled)
        {
            cache.Admit(newBlocks);
        }
        else
        {
            try
            {
                await CompleteAsync(entry, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                await TakeBackAsync(entry).ConfigureAwait(false);
                if (LocalStorageSpace.IsFull(ex))
                {
                    // A backend on the same disk (the filesystem backend) filled it.
                    throw space.Refused(ex, layout.StoredLength);
                }

                throw;
            }
        }

        // The new record is acknowledged; the old ones go through the normal deletion path (audited,
        // hidden at once, their cloud objects removed on the cache's schedule). Still under the lock,
        // so that no upload of the instance sees both.
        foreach (var old in replaced)
        {
            await deleter.DeleteAsync(old.Handle, CancellationToken.None).ConfigureAwait(false);
            LogReplaced(logger, old.Handle, handle);
        }

        LogAccepted(logger, handle, plaintextLength, layout.StoredLength, layout.Count);
        return new UploadReceipt(handle, header.SopInstanceUid, header.StudyInstanceUid, header.SeriesInstanceUid, header.SopClassUid, plaintextLength, preamble is null ? [] : [preamble.Message], entry.Seal, entry.SealDetail)
        {
            Replaced = replaced.Select(r => r.Handle).ToList(),
        };
    }

    /// <summary>
    /// What is decided once the header is read, before anything is sealed or kept: the study the
    /// request names, the record-level policy, and whether the organisation already holds this
    /// instance (under a lock on it, returned, held until the upload is acknowledged).
    /// </summary>
    private async Task<(IDisposable? Lock, IReadOnlyList<RecordEntry> Replaced, RecordEntry? AlreadyStored)> AdmitAsync(
        DicomHeader header, FederationIdentity origin, byte[] originalSha256, Func<RecordAttributes, CancellationToken, Task> authorize, string handle, string? expectedStudyInstanceUid, CancellationToken cancellationToken)
    {
        await DecideAsync(header, origin, authorize, handle, expectedStudyInstanceUid, cancellationToken).ConfigureAwait(false);
        return await AdmitInstanceAsync(header, origin, originalSha256, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The record-level decision: the study a STOW-RS request names, and the policy. Needs only the identifying attributes.</summary>
    private async Task DecideAsync(DicomHeader header, FederationIdentity origin, Func<RecordAttributes, CancellationToken, Task> authorize, string handle, string? expectedStudyInstanceUid, CancellationToken cancellationToken)
    {
        if (expectedStudyInstanceUid is not null && header.StudyInstanceUid != expectedStudyInstanceUid)
        {
            throw new UploadRejectedException($"the instance belongs to study {header.StudyInstanceUid ?? "(none)"}, not to {expectedStudyInstanceUid}", header.SopClassUid, header.SopInstanceUid);
        }

        await authorize(
            new RecordAttributes(handle, origin.Organisation, PatientPseudonym(header, origin), header.Modality, header.StudyDate),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The duplicate check, which needs the whole file's digest: holds the instance's lock until the record is committed.</summary>
    private async Task<(IDisposable? Lock, IReadOnlyList<RecordEntry> Replaced, RecordEntry? AlreadyStored)> AdmitInstanceAsync(
        DicomHeader header, FederationIdentity origin, byte[] originalSha256, CancellationToken cancellationToken)
    {
        if (header.SopInstanceUid is not { Length: > 0 } sopInstanceUid)
        {
            return (null, [], null);
        }

        var instanceLock = await _instances.AcquireAsync((origin.Organisation, sopInstanceUid), cancellationToken).ConfigureAwait(false);
        try
        {
            var existing = await index.FindInstanceAsync(origin.Organisation, sopInstanceUid).ConfigureAwait(false);
            var alreadyStored = existing.FirstOrDefault(e => CryptographicOperations.FixedTimeEquals(e.OriginalDigest, originalSha256));
            if (alreadyStored is null && existing.Count > 0 && options.Value.DuplicateInstance == RecordStoreOptions.KeepFirst)
            {
                throw new DuplicateInstanceException(existing[0].Handle, header.SopClassUid, sopInstanceUid);
            }

            return (instanceLock, options.Value.ReplacesDuplicates ? existing : [], alreadyStored);
        }
        catch
        {
            instanceLock.Dispose();
            throw;
        }
    }

    /// <summary>Encrypts a sealed upload held in memory into its cache file and pads it.</summary>
    private async Task<BlockLayout> EncryptAndPadAsync(FileStream staged, DataKey dataKey, ObjectName envelopeIndex, ReadOnlyMemory<byte> stored, CancellationToken cancellationToken)
    {
        await using (var envelope = new EnvelopeEncryptingStream(staged, dataKey, envelopeIndex.ToBytes(), options.Value.SegmentSize, leaveOpen: true))
        {
            await envelope.WriteAsync(stored, cancellationToken).ConfigureAwait(false);
            await envelope.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        var layout = cache.Padding.Layout(staged.Length);
        await PadAsync(staged, layout, cancellationToken).ConfigureAwait(false);
        return layout;
    }

    private static async Task PadAsync(FileStream staged, BlockLayout layout, CancellationToken cancellationToken)
    {
        await using var padding = new RandomBytesStream(layout.StoredLength - staged.Length);
        await padding.CopyToAsync(staged, cancellationToken).ConfigureAwait(false);
    }

    // Runs on the caller's thread up to the shared directory sync, so the file's fsync overlaps
    // whatever the caller started before (the audit append); the file is closed either way.
    private async Task PersistAsync(FileStream staged)
    {
        await using (staged.ConfigureAwait(false))
        {
            await staging.PersistAsync(staged).ConfigureAwait(false);
        }
    }

    // Closes a cache file that is to be deleted: its buffered tail may fail to flush on a full disk,
    // which must not replace the error being handled (the file goes either way).
    private static async Task DisposeAsync(FileStream? staged)
    {
        if (staged is not null)
        {
            try
            {
                await staged.DisposeAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// Reads the body whole if it fits the in-memory limit; a larger body comes back as a stream of
    /// what was read followed by the rest.
    /// </summary>
    private static async Task<(MemoryStream? Whole, Stream? Streamed)> ReadWholeAsync(Stream body, long limit, CancellationToken cancellationToken)
    {
        var held = new MemoryStream();
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            held.Write(buffer, 0, read);
            if (held.Length > limit)
            {
                return (null, new PrefixedStream(held.ToArray(), body));
            }
        }

        return (held, null);
    }

    private string LargeFileDetail => $"whole-file seal: larger than the {watermarks.Options.MaxInMemoryBytes} bytes sealed in memory (TrustedProxy:Watermarking:MaxInMemoryBytes), so sealed by its digest beside it";

    // The patient as the index, consent and the audit log know them: the Patient ID in its issuer's
    // or, without one, the uploading organisation's scope.
    private string? PatientPseudonym(DicomHeader header, FederationIdentity origin) =>
        header.PatientId is null ? null : pseudonymizer.Patient(header.PatientId, PatientScope.Of(header.Dataset, origin.Organisation));

    /// <summary>
    /// Write-through: puts a staged record's blocks to the backend and marks it stored. Idempotent,
    /// so recovery after a crash calls it again for every record still staged.
    /// </summary>
    public async Task CompleteAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        foreach (var block in await blocks.OfRecordAsync(entry.Handle).ConfigureAwait(false))
        {
            if (block.State == BlockState.Cached)
            {
                await writer.PutRealAsync(block, time.GetUtcNow(), cache.NextGroup, cancellationToken).ConfigureAwait(false);
            }
        }

        await index.TransitionAsync(entry.Handle, RecordState.Staged, RecordState.Stored).ConfigureAwait(false);
        staging.Delete(entry.Handle);
    }

    /// <summary>
    /// Removes a record that is hidden (state Deleting) or was never acknowledged: every block's
    /// object (a put whose answer was lost may have landed), then the rows and the cache file.
    /// </summary>
    public async Task TakeBackAsync(RecordEntry entry, bool alreadyHidden = false)
    {
        if (!alreadyHidden)
        {
            await index.TransitionAsync(entry.Handle, entry.State, RecordState.Deleting).ConfigureAwait(false);
        }

        staging.Delete(entry.Handle);
        try
        {
            foreach (var block in await blocks.OfRecordAsync(entry.Handle).ConfigureAwait(false))
            {
                await store.DeleteAsync(block.ObjectName, CancellationToken.None).ConfigureAwait(false);
                await blocks.RemoveAsync(block.Id).ConfigureAwait(false);
            }

            await index.DeleteAsync(entry.Handle).ConfigureAwait(false);
        }
        catch (BackendUnavailableException)
        {
            LogTakeBackDeferred(logger, entry.Handle);
        }
    }

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Upload {Handle} failed and its possible backend objects could not be removed now; recovery will remove them")]
    private static partial void LogTakeBackDeferred(ILogger logger, string handle);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Upload answered with record {Handle}: the same instance was already stored")]
    private static partial void LogAlreadyStored(ILogger logger, string handle);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "Record {Old} replaced by record {New}: the same instance with other content (DuplicateInstance = replace)")]
    private static partial void LogReplaced(ILogger logger, string old, string @new);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Record {Handle} accepted: {PlaintextBytes} bytes as {StoredBytes} bytes of ciphertext in {Blocks} block(s)")]
    private static partial void LogAccepted(ILogger logger, string handle, long plaintextBytes, long storedBytes, int blocks);
}
