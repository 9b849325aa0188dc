using System.Globalization;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;

namespace TrustedProxy.Records;

/// <summary>A record as one request may receive it: how to stream it, and what can be said about it beforehand.</summary>
internal sealed class ViewedRecord(RecordEntry entry, RecordView view, long? length, byte[]? sha256, Func<Stream, CancellationToken, Task> copy)
{
    public RecordEntry Entry { get; } = entry;

    public RecordView View { get; } = view;

    /// <summary>Known for the original view only; the de-identified view is produced while it streams.</summary>
    public long? Length { get; } = length;

    public byte[]? Sha256 { get; } = sha256;

    public Task CopyToAsync(Stream destination, CancellationToken cancellationToken) => copy(destination, cancellationToken);
}

/// <summary>
/// Turns an index entry into what a permitted request may receive, as the policy's obligations say:
/// the original file bit-exact, or its de-identified view (streamed through the de-identifier);
/// its metadata (the sealed header) in either view; and a summary in either view.
/// </summary>
internal sealed class RecordViews(
    RecordReader reader,
    Deidentifier deidentifier,
    ProxyKeyRing keys,
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

    /// <summary>Opens a record in the view the obligations require. The de-identified view is checked for eligibility before anything is sent.</summary>
    public async Task<ViewedRecord> OpenAsync(RecordEntry entry, PolicyObligations obligations, CancellationToken cancellationToken)
    {
        if (obligations.View == RecordView.Original)
        {
            return new ViewedRecord(entry, RecordView.Original, entry.PlaintextLength, entry.ContentSha256, async (destination, token) =>
            {
                await using var content = await reader.OpenAsync(entry, token).ConfigureAwait(false);
                await content.Stream.CopyToAsync(destination, 1 << 16, token).ConfigureAwait(false);
            });
        }

        var profile = Profile(obligations);
        deidentifier.CheckEligible(await MetadataAsync(entry, PolicyObligations.None, cancellationToken).ConfigureAwait(false), profile);
        return new ViewedRecord(entry, RecordView.Deidentified, null, null, async (destination, token) =>
        {
            await using var content = await reader.OpenAsync(entry, token).ConfigureAwait(false);
            await deidentifier.DeidentifyAsync(content.Stream, destination, profile, limits.Value, token).ConfigureAwait(false);
        });
    }

    /// <summary>The record's header (no bulk data) in the view the obligations require.</summary>
    public async Task<DicomDataset> MetadataAsync(RecordEntry entry, PolicyObligations obligations, CancellationToken cancellationToken)
    {
        if (entry.SealedMetadata is null)
        {
            throw new InvalidOperationException($"record {entry.Handle} has no metadata");
        }

        byte[] metadata;
        using (var dataKey = keys.KeyEncryptionKey.Unwrap(entry.WrappedKey, entry.Handle))
        {
            metadata = RecordMetadataSealer.Open(dataKey, entry.Handle, entry.SealedMetadata);
        }

        var dataset = (await DicomFile.ReadAsync(new MemoryStream(metadata), limits.Value, cancellationToken).ConfigureAwait(false)).Dataset;
        if (obligations.View == RecordView.Deidentified)
        {
            deidentifier.DeidentifyDataset(dataset, Profile(obligations));
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
                entry.OriginOrganisation, entry.CreatedAt, "original");
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
            entry.TransferSyntaxUid, null, institution, null, $"deidentified:{profile.Name}");
    }
}

/// <summary>A record described in one view; the de-identified view leaves out what would identify.</summary>
internal sealed record RecordDescription(
    string Handle, string? PatientPseudonym, string? StudyInstanceUid, string? SeriesInstanceUid, string? SopInstanceUid, string? SopClassUid,
    string? Modality, string? StudyDate, string TransferSyntaxUid, long? Length, string? OriginOrganisation, DateTimeOffset? CreatedAt, string View);

/// <summary>A request named a de-identification profile that is not configured.</summary>
public sealed class UnknownDeidentificationProfileException(string name, IEnumerable<string> known)
    : Exception($"no de-identification profile is named '{name}'; configured: {string.Join(", ", known)}");
