using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.IO;
using TrustedProxy.Policy;
using TrustedProxy.Watermarking;

using TrustedProxy.Telemetry;

namespace TrustedProxy.Records;

/// <summary>
/// A record as one request may receive it: how to stream it, and what can be said about it
/// beforehand. A copy made in memory may hold a pooled buffer: dispose the record once it is sent
/// (not before), so the buffer is wiped and reused; one never disposed is left to the collector.
/// </summary>
internal sealed class ViewedRecord(
    RecordEntry entry, RecordView view, long? length, byte[]? sha256, Func<Stream, CancellationToken, Task> copy, string mark = ViewedRecord.Unmarked,
    ArraySegment<byte>? inMemory = null, IDisposable? owner = null) : IDisposable
{
    /// <summary>The copy carries a fingerprint naming the consumer and the request.</summary>
    public const string Fingerprinted = "fingerprinted";

    /// <summary>The copy is the record without a fingerprint (the policy allows it, or none was asked).</summary>
    public const string Unmarked = "unmarked";

    /// <summary>
    /// Whether the copy carries a fingerprint: <see cref="Fingerprinted"/>, <see cref="Unmarked"/>, or
    /// "unmarked; reason=…" when one was due but the image cannot carry it (ASCII, for a header).
    /// </summary>
    public string Mark { get; } = mark;

    public RecordEntry Entry { get; } = entry;

    public RecordView View { get; } = view;

    /// <summary>Known for the original view only; the de-identified view is produced while it streams.</summary>
    public long? Length { get; } = length;

    public byte[]? Sha256 { get; } = sha256;

    public Task CopyToAsync(Stream destination, CancellationToken cancellationToken) => copy(destination, cancellationToken);

    /// <summary>
    /// The whole copy, from the start of its array, when it was made in memory before sending (a
    /// sealed record restored, a de-identified or fingerprinted copy), so that a reader in the proxy
    /// (a render) parses it where it is rather than copy it again; null when the copy streams. Never
    /// to be changed, nor used after the record is disposed.
    /// </summary>
    public ArraySegment<byte>? InMemory { get; } = inMemory;

    public void Dispose() => owner?.Dispose();
}

/// <summary>
/// Retrieve entries already durable in the audit log for one retrieval (see
/// <see cref="RecordViews.AuditAheadAsync"/>): which record, in which view, as which copy. Each is
/// taken once, by the opening of the copy it names.
/// </summary>
internal sealed class AuditedAhead
{
    private readonly ConcurrentDictionary<(string Handle, string View, string Copy), byte> _entries = new();

    public void Add(string handle, string view, string copy) => _entries.TryAdd((handle, view, copy), 0);

    public bool TryTake(string handle, string view, string copy) => _entries.TryRemove((handle, view, copy), out _);
}

/// <summary>
/// Turns an index entry into what a permitted request may receive, as the policy's obligations say:
/// the original file bit-exact, or its de-identified view (streamed through the de-identifier);
/// its metadata (the sealed header) in either view; and a summary in either view. Every copy of a
/// record's content handed out is in the audit log before its first byte leaves.
/// </summary>
internal sealed class RecordViews(
    RecordReader reader,
    Deidentifier deidentifier,
    ProxyKeyRing keys,
    RecordWatermarks watermarks,
    AuditLog audit,
    IOptions<DeidentificationSettings> deidentification,
    IOptions<DicomReaderLimits> limits)
{
    public DeidentificationProfile Profile(PolicyObligations obligations)
    {
        var name = obligations.DeidentificationProfile ?? deidentification.Value.DefaultProfile;
        return deidentification.Value.ByName.TryGetValue(name, out var profile)
            ? profile
            : throw new UnknownDeidentificationProfileException(name, deidentification.Value.ByName.Keys);
    }

    /// <summary>Announces a retrieval of these records, so that their cloud blocks come as one read stream (see <see cref="RecordReader.PrefetchAsync"/>).</summary>
    public Task<IDisposable> PrefetchAsync(IReadOnlyList<RecordEntry> entries, CancellationToken cancellationToken) => reader.PrefetchAsync(entries, cancellationToken);

    /// <summary>
    /// Opens a record in the view the obligations require. The de-identified view is checked for
    /// eligibility before anything is sent. A sealed record is verified and restored to its original
    /// first (a failure throws <see cref="SealIntegrityException"/>), then de-identified if the view
    /// says so, then fingerprinted for <paramref name="egress"/> if the obligations say so; all of it
    /// in memory, before the first byte is sent. An unsealed record without a fingerprint due streams.
    /// The copy is appended to the audit log (record, patient pseudonym, view, mark) before it is
    /// returned, unless <paramref name="ahead"/> holds that very entry already (<see cref="AuditAheadAsync"/>).
    /// </summary>
    public async Task<ViewedRecord> OpenAsync(RecordEntry entry, PolicyObligations obligations, EgressMark? egress, CancellationToken cancellationToken, AuditedAhead? ahead = null)
    {
        using var span = ProxyTracing.Start("record.open");
        var viewed = await PrepareAsync(entry, obligations, egress, cancellationToken).ConfigureAwait(false);
        try
        {
            var view = ViewName(viewed.View, obligations);
            span?.SetTag(ProxyTracing.View, view);
            if (ahead?.TryTake(entry.Handle, view, viewed.Mark) != true)
            {
                await audit.AppendAsync(AuditEvents.Retrieve(entry, view, viewed.Mark, egress?.RequestId)).ConfigureAwait(false);
            }

            return viewed;
        }
        catch
        {
            viewed.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Appends the retrieve entries of records about to be opened one after the other (a WADO-RS
    /// study), all in one group commit, so that a study costs an fsync per batch rather than per
    /// instance. Only copies that can be named before they are made are written ahead: those without
    /// a fingerprint due (the copy is then <see cref="ViewedRecord.Unmarked"/>); a fingerprinted
    /// copy's entry names its mark, known once embedded, and is appended by <see cref="OpenAsync"/>.
    /// The entries are durable when this returns; as every audit entry, they say what the proxy was
    /// about to send (docs/audit-log.md), and <see cref="OpenAsync"/> with <paramref name="ahead"/>
    /// appends nothing for a copy written ahead exactly as it turns out.
    /// </summary>
    public async Task AuditAheadAsync(IReadOnlyList<(RecordEntry Entry, PolicyObligations Obligations)> records, EgressMark? egress, AuditedAhead ahead)
    {
        var appends = new List<Task>(records.Count);
        var written = new List<(string Handle, string View)>(records.Count);
        foreach (var (entry, obligations) in records)
        {
            if (obligations.Fingerprint && egress is not null)
            {
                continue;
            }

            var view = ViewName(obligations.View, obligations);
            appends.Add(audit.AppendAsync(AuditEvents.Retrieve(entry, view, ViewedRecord.Unmarked, egress?.RequestId)));
            written.Add((entry.Handle, view));
        }

        await Task.WhenAll(appends).ConfigureAwait(false);
        foreach (var (handle, view) in written)
        {
            ahead.Add(handle, view, ViewedRecord.Unmarked);
        }
    }

    /// <summary>How entries and export bundles name a view: "original" or "deidentified:&lt;profile&gt;".</summary>
    public string ViewName(RecordView view, PolicyObligations obligations) =>
        view == RecordView.Original ? "original" : $"deidentified:{Profile(obligations).Name}";

    /// <summary>
    /// What can refuse a record before anything is read: the profile the obligations name, and in the
    /// de-identified view the header's eligibility (a burned-in annotation, for example). A retrieval of
    /// many records checks them all first, so that a refusal is still a clean problem answer, and then
    /// opens and sends them one at a time (<see cref="OpenAsync"/>), holding one in memory at most.
    /// </summary>
    public async Task CheckAsync(RecordEntry entry, PolicyObligations obligations, CancellationToken cancellationToken)
    {
        if (obligations.View == RecordView.Deidentified)
        {
            deidentifier.CheckEligible(await MetadataAsync(entry, PolicyObligations.None, cancellationToken).ConfigureAwait(false), Profile(obligations));
        }
    }

    private async Task<ViewedRecord> PrepareAsync(RecordEntry entry, PolicyObligations obligations, EgressMark? egress, CancellationToken cancellationToken)
    {
        var fingerprint = obligations.Fingerprint && egress is not null;
        var fitsInMemory = entry.PlaintextLength <= watermarks.Options.MaxInMemoryBytes;
        var profile = obligations.View == RecordView.Deidentified ? Profile(obligations) : null;
        await CheckAsync(entry, obligations, cancellationToken).ConfigureAwait(false);

        if (entry.Seal is RecordSealKind.None or RecordSealKind.WholeFile && (!fingerprint || !fitsInMemory))
        {
            if (entry.Seal == RecordSealKind.WholeFile)
            {
                watermarks.VerifyWholeFile(entry.Handle, entry.OriginOrganisation, entry.DetachedSeal, entry.OriginalSha256);
            }

            var mark = fingerprint ? "unmarked; reason=too-large" : ViewedRecord.Unmarked;
            if (profile is null)
            {
                return new ViewedRecord(entry, RecordView.Original, entry.PlaintextLength, entry.ContentSha256, async (destination, token) =>
                {
                    await using var content = await reader.OpenAsync(entry, token).ConfigureAwait(false);
                    await CopyCheckedAsync(entry, content.Stream, destination, token).ConfigureAwait(false);
                }, mark);
            }

            return new ViewedRecord(entry, RecordView.Deidentified, null, null, async (destination, token) =>
            {
                await using var content = await reader.OpenAsync(entry, token).ConfigureAwait(false);
                await deidentifier.DeidentifyAsync(content.Stream, destination, profile, entry.OriginOrganisation, limits.Value, token, entry.ResearchPseudonym).ConfigureAwait(false);
            }, mark);
        }

        // Decrypted once into one pooled buffer, restored there, and parsed once for the seal; the
        // fingerprint reuses that parse. A de-identified copy is a new file, written to memory and
        // parsed again only if a fingerprint is due.
        var (original, parsed) = await OriginalAsync(entry, cancellationToken).ConfigureAwait(false);
        PlaintextBuffer? owner = original;
        try
        {
            var bytes = original.Array;
            var length = original.Length;
            if (profile is not null)
            {
                using var deidentified = new MemoryStream();
                await deidentifier.DeidentifyAsync(new MemoryStream(bytes, 0, length, writable: false), deidentified, profile, entry.OriginOrganisation, limits.Value, cancellationToken, entry.ResearchPseudonym).ConfigureAwait(false);
                owner.Dispose();
                owner = null;
                (bytes, length, parsed) = (deidentified.GetBuffer(), (int)deidentified.Length, ParsedRecord.Unparsed);
            }

            var marked = ViewedRecord.Unmarked;
            if (fingerprint)
            {
                var file = parsed.File is null ? await watermarks.ParseAsync(bytes, length, cancellationToken).ConfigureAwait(false) : parsed;
                WatermarkRefusal? refused;
                if (file is null)
                {
                    refused = new WatermarkRefusal(WatermarkRefusalReason.NoPixelData, "not a readable DICOM file");
                }
                else
                {
                    (var rewritten, refused) = await watermarks.FingerprintAsync(file.File!, bytes, length, file.PixelDataOffset, egress!, cancellationToken).ConfigureAwait(false);
                    if (rewritten is not null)
                    {
                        owner?.Dispose();
                        owner = null;
                        (bytes, length) = (rewritten, rewritten.Length);
                    }
                }

                marked = refused is null ? ViewedRecord.Fingerprinted : $"unmarked; reason={refused.Reason}";
            }

            var copy = new ArraySegment<byte>(bytes, 0, length);
            Task Write(Stream destination, CancellationToken token) => destination.WriteAsync(copy, token).AsTask();
            return profile is null
                ? new ViewedRecord(entry, RecordView.Original, length, marked == ViewedRecord.Fingerprinted ? SHA256.HashData(copy) : entry.OriginalDigest, Write, marked, copy, owner)
                : new ViewedRecord(entry, RecordView.Deidentified, null, null, Write, marked, copy, owner);
        }
        catch
        {
            owner?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Streams a record out while hashing it; a digest other than the one its whole-file seal binds
    /// throws at the end, which aborts the response (the client's digest check fails too). The
    /// envelope already authenticates every segment; this catches a record swapped inside the proxy.
    /// </summary>
    private static async Task CopyCheckedAsync(RecordEntry entry, Stream source, Stream destination, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
        }

        if (entry.Seal == RecordSealKind.WholeFile && !CryptographicOperations.FixedTimeEquals(hash.GetHashAndReset(), entry.OriginalDigest))
        {
            throw new SealIntegrityException("the record does not match the digest its whole-file seal binds");
        }
    }

    /// <summary>
    /// The record as uploaded, in a pooled buffer the caller owns: decrypted (once, as it is
    /// authenticated) into it, its seal verified and its pixels restored there, and the file as parsed
    /// for the seal (see <see cref="RecordWatermarks.RestoreAsync"/>).
    /// </summary>
    private async Task<(PlaintextBuffer Buffer, ParsedRecord Parsed)> OriginalAsync(RecordEntry entry, CancellationToken cancellationToken)
    {
        PlaintextBuffer? buffer = null;
        try
        {
            await using (var content = await reader.OpenAsync(entry, cancellationToken).ConfigureAwait(false))
            {
                buffer = content.TakeWhole();
                if (buffer is null)
                {
                    // Above the reader's in-memory verify limit, it streams; held here all the same, up to the watermarking bound.
                    buffer = new PlaintextBuffer(checked((int)entry.PlaintextLength));
                    await content.Stream.ReadExactlyAsync(buffer.Memory, cancellationToken).ConfigureAwait(false);
                }
            }

            var parsed = await watermarks.RestoreAsync(entry.Handle, entry.Seal, entry.DetachedSeal, entry.OriginalSha256, buffer.Array, buffer.Length, cancellationToken).ConfigureAwait(false);
            return (buffer, parsed);
        }
        catch
        {
            buffer?.Dispose();
            throw;
        }
    }

    /// <summary>The record's header (no bulk data) in the view the obligations require.</summary>
    public async Task<DicomDataset> MetadataAsync(RecordEntry entry, PolicyObligations obligations, CancellationToken cancellationToken)
    {
        if (entry.SealedMetadata is null)
        {
            throw new InvalidOperationException($"record {entry.Handle} has no metadata");
        }

        byte[] metadata;
        using (var dataKey = keys.KeyEncryptionKeys.Unwrap(entry.WrappedKey, entry.Handle))
        {
            metadata = RecordMetadataSealer.Open(dataKey, entry.Handle, entry.SealedMetadata);
        }

        var dataset = (await DicomFile.ReadAsync(new MemoryStream(metadata), limits.Value, cancellationToken).ConfigureAwait(false)).Dataset;
        if (obligations.View == RecordView.Deidentified)
        {
            deidentifier.DeidentifyDataset(dataset, Profile(obligations), entry.OriginOrganisation, entry.ResearchPseudonym);
        }

        return dataset;
    }

    /// <summary>What the records API says about a record in the view the obligations require.</summary>
    public async Task<RecordDescription> DescribeAsync(RecordEntry entry, PolicyObligations obligations, CancellationToken cancellationToken)
    {
        if (obligations.View == RecordView.Original)
        {
            return new RecordDescription(
                entry.Handle, entry.PatientPseudonym, entry.StudyInstanceUid, entry.SeriesInstanceUid, entry.SopInstanceUid, entry.SopClassUid,
                entry.Modality, entry.StudyDate?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), entry.TransferSyntaxUid, entry.PlaintextLength,
                entry.OriginOrganisation, entry.CreatedAt, "original", SealName(entry.Seal));
        }

        var profile = Profile(obligations);
        var dataset = await MetadataAsync(entry, obligations, cancellationToken).ConfigureAwait(false);
        var date = dataset.GetString(DicomTag.StudyDate) is { Length: >= 8 } text && DateOnly.TryParseExact(text[..8], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
            : null;
        var institution = profile.Options.Contains(DeidentificationOption.RetainInstitutionIdentity) ? entry.OriginOrganisation : null;
        return new RecordDescription(
            entry.Handle, dataset.GetString(DicomTag.PatientId), dataset.GetString(DicomTag.StudyInstanceUid), dataset.GetString(DicomTag.SeriesInstanceUid),
            dataset.GetString(DicomTag.SopInstanceUid), dataset.GetString(DicomTag.SopClassUid), dataset.GetString(DicomTag.Modality), date,
            entry.TransferSyntaxUid, null, institution, null, $"deidentified:{profile.Name}", SealName(entry.Seal));
    }

    /// <summary>The seal kind as the API names it: pixels, detached, whole-file or none.</summary>
    public static string SealName(RecordSealKind kind) => kind switch
    {
        RecordSealKind.Pixels => "pixels",
        RecordSealKind.Detached => "detached",
        RecordSealKind.WholeFile => "whole-file",
        _ => "none",
    };
}

/// <summary>A record described in one view; the de-identified view leaves out what would identify.</summary>
internal sealed record RecordDescription(
    string Handle, string? PatientPseudonym, string? StudyInstanceUid, string? SeriesInstanceUid, string? SopInstanceUid, string? SopClassUid,
    string? Modality, string? StudyDate, string TransferSyntaxUid, long? Length, string? OriginOrganisation, DateTimeOffset? CreatedAt, string View, string Seal);

/// <summary>A request named a de-identification profile that is not configured.</summary>
public sealed class UnknownDeidentificationProfileException(string name, IEnumerable<string> known)
    : Exception($"no de-identification profile is named '{name}'; configured: {string.Join(", ", known)}");
