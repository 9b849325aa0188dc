using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>A well-formed file refused for what it is (for example, an instance of another study than the request names).</summary>
public sealed class UploadRejectedException(string reason, string? sopClassUid, string? sopInstanceUid) : Exception(reason)
{
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
public sealed record UploadReceipt(string Handle, string? SopInstanceUid, string? StudyInstanceUid, string? SeriesInstanceUid, string? SopClassUid, long Length, IReadOnlyList<string> Warnings);

/// <summary>
/// The upload path, in the order the data meets it: the preamble is checked for an executable
/// header, then the body is read once, as the DICOM reader walks it (so a malformed file is
/// refused) and keeps its header, each byte flowing on into the envelope encryption under a fresh
/// data key, into a staging file on local disk. Only when the whole file is read, valid and sealed
/// does anything become visible: an index row (staged, with the header sealed as metadata), the put
/// to the backend under a fresh random name, then the row marked stored. Any failure before that
/// leaves nothing behind.
/// </summary>
internal sealed partial class RecordUploader(
    RecordIndex index,
    IObjectStore store,
    ProxyKeyRing keys,
    IdentifierPseudonymizer pseudonymizer,
    DeidentificationKeys deidentificationKeys,
    StagingArea staging,
    IOptions<RecordStoreOptions> options,
    IOptions<DicomReaderLimits> dicomLimits,
    TimeProvider time,
    ILogger<RecordUploader> logger)
{
    /// <summary>Stores one file; with <paramref name="expectedStudyInstanceUid"/>, a file of another study is rejected before anything is kept.</summary>
    public async Task<UploadReceipt> UploadAsync(Stream body, FederationIdentity origin, CancellationToken cancellationToken, string? expectedStudyInstanceUid = null)
    {
        var handle = RecordHandle.New();
        var objectName = ObjectName.NewRandom();
        using var dataKey = DataKey.CreateRandom();

        var (checkedBody, preamble) = await PreambleGuard.InspectAsync(body, dicomLimits.Value.ExecutablePreamble, cancellationToken).ConfigureAwait(false);
        DicomHeader header;
        long plaintextLength, storedLength;
        byte[] digest;
        try
        {
            await using var staged = staging.Create(handle);
            await using (var envelope = new EnvelopeEncryptingStream(staged, dataKey, objectName.ToBytes(), options.Value.SegmentSize, leaveOpen: true))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var tee = new TeeReadStream(checkedBody, envelope, hash);
                header = await DicomHeader.ReadAsync(tee, dicomLimits.Value, cancellationToken).ConfigureAwait(false);
                await envelope.CompleteAsync(cancellationToken).ConfigureAwait(false);
                plaintextLength = envelope.PlaintextLength;
                digest = hash.GetHashAndReset();
            }

            if (expectedStudyInstanceUid is not null && header.StudyInstanceUid != expectedStudyInstanceUid)
            {
                throw new UploadRejectedException($"the instance belongs to study {header.StudyInstanceUid ?? "(none)"}, not to {expectedStudyInstanceUid}", header.SopClassUid, header.SopInstanceUid);
            }

            staged.Flush(flushToDisk: true);
            storedLength = staged.Length;
        }
        catch
        {
            staging.Delete(handle);
            throw;
        }

        var patientKey = DeidentificationKeys.PatientKey(header.Dataset);
        var entry = new RecordEntry
        {
            Handle = handle,
            ObjectName = objectName,
            WrappedKey = keys.KeyEncryptionKey.Wrap(dataKey, handle),
            PatientPseudonym = header.PatientId is null ? null : pseudonymizer.Patient(header.PatientId),
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
            StoredLength = storedLength,
            ContentSha256 = digest,
            OriginOrganisation = origin.Organisation,
            State = RecordState.Staged,
            CreatedAt = time.GetUtcNow(),
        };

        await index.InsertAsync(entry).ConfigureAwait(false);
        try
        {
            await CompleteAsync(entry, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await TakeBackAsync(entry).ConfigureAwait(false);
            throw;
        }

        LogStored(logger, handle, plaintextLength, storedLength);
        return new UploadReceipt(handle, header.SopInstanceUid, header.StudyInstanceUid, header.SeriesInstanceUid, header.SopClassUid, plaintextLength, preamble is null ? [] : [preamble.Message]);
    }

    /// <summary>
    /// Puts a staged record to the backend and marks it stored. Idempotent, so recovery after a
    /// crash calls it again for every record still staged.
    /// </summary>
    public async Task CompleteAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        await using (var staged = staging.OpenRead(entry.Handle) ?? throw new InvalidOperationException($"the staged ciphertext of record {entry.Handle} is missing"))
        {
            // A collision of two random 128-bit names is negligible: AlreadyExists means a retry of
            // our own earlier put whose answer was lost.
            await store.PutIfAbsentAsync(entry.ObjectName, staged, staged.Length, cancellationToken).ConfigureAwait(false);
        }

        await index.TransitionAsync(entry.Handle, RecordState.Staged, RecordState.Stored).ConfigureAwait(false);
        staging.Delete(entry.Handle);
    }

    // Not acknowledged: take back everything, including an object the backend may have kept
    // although its answer was lost. If the backend cannot be reached for that either, the row
    // stays marked for deletion and recovery finishes the job.
    private async Task TakeBackAsync(RecordEntry entry)
    {
        await index.TransitionAsync(entry.Handle, RecordState.Staged, RecordState.Deleting).ConfigureAwait(false);
        staging.Delete(entry.Handle);
        try
        {
            await store.DeleteAsync(entry.ObjectName, CancellationToken.None).ConfigureAwait(false);
            await index.DeleteAsync(entry.Handle).ConfigureAwait(false);
        }
        catch (BackendUnavailableException)
        {
            LogTakeBackDeferred(logger, entry.Handle);
        }
    }

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Upload {Handle} failed and its possible backend object could not be removed now; recovery will remove it")]
    private static partial void LogTakeBackDeferred(ILogger logger, string handle);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Record {Handle} stored: {PlaintextBytes} bytes as {StoredBytes} bytes of ciphertext")]
    private static partial void LogStored(ILogger logger, string handle, long plaintextBytes, long storedBytes);
}
