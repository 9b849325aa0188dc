using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrustedProxy.Crypto;
using TrustedProxy.Dicom;

namespace TrustedProxy.Watermarking;

/// <summary>How a record's integrity and origin are bound, as the index records it.</summary>
public enum RecordSealKind
{
    /// <summary>Not sealed: larger than the in-memory limit, or stored before sealing existed. The envelope alone protects it.</summary>
    None,

    /// <summary>A reversible seal in the pixels; restored at every retrieval.</summary>
    Pixels,

    /// <summary>A detached seal stored with the record (compressed, deflated, too small, or otherwise refused by the scheme).</summary>
    Detached,

    /// <summary>
    /// A detached seal over the whole file's SHA-256, for uploads larger than the in-memory limit
    /// (or that the whole-file reader cannot parse): they stream in and out, so the seal is checked
    /// against the index's digest before the first byte goes out and the stream against the digest at its end.
    /// </summary>
    WholeFile,
}

/// <summary>What sealing did to an upload: the bytes to store (the sealed file, or the upload as it was), and how it is sealed.</summary>
internal sealed record IngestSeal(RecordSealKind Kind, byte[] Stored, int StoredLength, byte[]? DetachedSeal, byte[] OriginalSha256, string Detail, WatermarkRefusalReason? Refusal);

/// <summary>
/// A copy held in a buffer, parsed over that buffer (<see cref="DicomFile.ReadInPlaceAsync"/>), or
/// into a copy where the in-place reader cannot, with where its native Pixel Data lies in the buffer
/// (-1: the file holds its own copy, or there is none). <see cref="RecordWatermarks.RestoreAsync"/>
/// leaves <see cref="File"/> null for a record unsealed or sealed as a whole file, which needs no parse.
/// </summary>
internal sealed record ParsedRecord(DicomFile? File, int PixelDataOffset)
{
    public static ParsedRecord Unparsed { get; } = new(null, -1);
}

/// <summary>Who a copy goes to: the consumer's identifier, the request it answers, and when.</summary>
internal sealed record EgressMark(string ConsumerId, string RequestId, DateTimeOffset Time);

/// <summary>A record's seal did not verify at retrieval; the record is not served.</summary>
internal sealed class SealIntegrityException(string detail) : Exception(detail);

/// <summary>
/// The server's use of <see cref="DicomWatermarker"/> under the proxy's watermark key: seal an upload
/// (in its pixels, else a detached seal), verify and restore a stored record, fingerprint a copy.
/// Everything here works on whole files in memory, bounded by <see cref="WatermarkingOptions.MaxInMemoryBytes"/>.
/// </summary>
internal sealed class RecordWatermarks : IDisposable
{
    private readonly IOptions<DicomReaderLimits> _limits;

    public RecordWatermarks(ProxyKeyRing keys, IOptions<WatermarkingOptions> options, IOptions<DicomReaderLimits> limits)
    {
        var key = keys.Derive(WatermarkKeys.ProxyKeyPurpose);
        try
        {
            Watermarker = new DicomWatermarker(key, new WatermarkOptions(options.Value.MinimumPsnr, options.Value.AllowDeflated));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }

        Options = options.Value;
        _limits = limits;
    }

    public DicomWatermarker Watermarker { get; }

    public WatermarkingOptions Options { get; }

    /// <summary>The 64-bit tag of a request identifier, as fingerprints carry it (hex, for the decision log).</summary>
    public string RequestTag(string requestId) => TagText(Watermarker.RequestTag(requestId));

    public string ConsumerTag(string consumerId) => TagText(Watermarker.ConsumerTag(consumerId));

    public string OriginTag(string organisation) => TagText(Watermarker.OriginTag(organisation));

    public static string TagText(ulong tag) => tag.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Seals an upload held in memory: in its pixels when the scheme accepts them, else with a
    /// detached seal. A file the whole-file reader refuses gets a whole-file seal and is stored as
    /// it is, for the streaming reader to judge (it refuses malformed files with the usual error).
    /// Native pixels are sealed in <paramref name="upload"/> itself (which then holds the stored
    /// file): the Pixel Data keeps its length and place, so nothing else is copied or re-encoded.
    /// </summary>
    public async Task<IngestSeal> SealAsync(byte[] upload, int length, SealFields fields, CancellationToken cancellationToken, byte[]? originalSha256 = null)
    {
        originalSha256 ??= SHA256.HashData(upload.AsSpan(0, length));
        (DicomFile File, int PixelDataOffset)? inPlace;
        DicomFile file;
        try
        {
            inPlace = await DicomFile.ReadInPlaceAsync(upload, length, _limits.Value, cancellationToken).ConfigureAwait(false);
            file = inPlace?.File ?? await DicomFile.ReadAsync(new MemoryStream(upload, 0, length, writable: false), _limits.Value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DicomFormatException or InvalidDataException or EndOfStreamException)
        {
            return new IngestSeal(RecordSealKind.WholeFile, upload, length, SealWholeFile(fields, originalSha256), originalSha256, "whole-file seal: the file could not be read whole", null);
        }

        return await SealParsedAsync(file, inPlace?.PixelDataOffset ?? -1, upload, length, fields, originalSha256, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Seals an upload already read (by <see cref="DicomFile.ReadUploadAsync"/>, whose header the
    /// policy has seen): <paramref name="file"/> is <paramref name="upload"/> read, with the native
    /// Pixel Data value at <paramref name="pixelDataOffset"/> in it (-1: none there), and
    /// <paramref name="originalSha256"/> its digest. Nothing is read again.
    /// </summary>
    public async Task<IngestSeal> SealParsedAsync(DicomFile file, int pixelDataOffset, byte[] upload, int length, SealFields fields, byte[] originalSha256, CancellationToken cancellationToken)
    {
        var originalPixels = file.Dataset.Find(DicomTag.PixelData)?.Value.Length;
        var result = Watermarker.Seal(file, fields);
        if (!result.Embedded)
        {
            return Detached(file, fields, upload, length, originalSha256, result.Refusal!);
        }

        var detail = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"sealed in the pixels ({result.Statistics!.Frames.Count} frame(s), PSNR {result.Statistics.WorstFramePsnr:F1} dB)");
        var sealedPixels = file.Dataset.Find(DicomTag.PixelData)!.Value;
        if (pixelDataOffset >= 0 && sealedPixels.Length == originalPixels)
        {
            sealedPixels.Span.CopyTo(upload.AsSpan(pixelDataOffset));
            return new IngestSeal(RecordSealKind.Pixels, upload, length, null, originalSha256, detail, null);
        }

        var sealedFile = await file.ToBytesAsync(cancellationToken).ConfigureAwait(false);
        if (sealedFile.Length == length)
        {
            return new IngestSeal(RecordSealKind.Pixels, sealedFile, sealedFile.Length, null, originalSha256, detail, null);
        }

        // Cannot happen for a native file (the Pixel Data keeps its length); if it did, a restored
        // file could not be the upload byte for byte, so the pixels are left alone.
        file = await DicomFile.ReadAsync(new MemoryStream(upload, 0, length, writable: false), _limits.Value, cancellationToken).ConfigureAwait(false);
        return Detached(file, fields, upload, length, originalSha256, new WatermarkRefusal(WatermarkRefusalReason.UnsupportedLayout, "the sealed file would not have the upload's length"));
    }

    /// <summary>The seal of an upload that streamed through unsealed, over its SHA-256 (taken while it streamed).</summary>
    public byte[] SealWholeFile(SealFields fields, byte[] fileSha256) => Watermarker.CreateFileSeal(fields, fileSha256);

    /// <summary>
    /// Throws <see cref="SealIntegrityException"/> unless a whole-file seal binds this record, its
    /// origin and this digest; for a record that streams, checked before the first byte goes out.
    /// </summary>
    public void VerifyWholeFile(string handle, string origin, byte[]? seal, byte[]? fileSha256)
    {
        var verification = Watermarker.VerifyFileSeal(seal ?? [], fileSha256 ?? [], handle, origin);
        if (!verification.IsVerified)
        {
            throw new SealIntegrityException($"the record's whole-file seal does not verify: {verification.Detail}");
        }
    }

    private IngestSeal Detached(DicomFile file, SealFields fields, byte[] upload, int length, byte[] originalSha256, WatermarkRefusal refusal) =>
        new(RecordSealKind.Detached, upload, length, Watermarker.CreateDetachedSeal(file, fields), originalSha256,
            $"detached seal: the pixels cannot carry one ({refusal.Reason}: {refusal.Message})", refusal.Reason);

    /// <summary>
    /// Verifies a stored record's seal and turns the record as stored, the first
    /// <paramref name="length"/> bytes of <paramref name="buffer"/>, into the original file where it
    /// lies, parsing it once: a seal in native Pixel Data the in-place reader leaves in the buffer
    /// (above 64 KiB) is removed in the buffer itself; smaller or deflated pixels are restored on the
    /// parsed file, which is written back over the buffer (a sealed file keeps its upload's length).
    /// The restored bytes are checked against the digest taken at upload. The file is returned,
    /// parsed, when the seal needed it (a seal in or beside the pixels), so that a fingerprint can be
    /// embedded without a second parse. Any failure throws <see cref="SealIntegrityException"/>, and
    /// the buffer must not be served.
    /// </summary>
    public async Task<ParsedRecord> RestoreAsync(string handle, RecordSealKind kind, byte[]? detachedSeal, byte[]? originalSha256, byte[] buffer, int length, CancellationToken cancellationToken)
    {
        if (kind == RecordSealKind.None)
        {
            return ParsedRecord.Unparsed;
        }

        if (kind == RecordSealKind.WholeFile)
        {
            var whole = Watermarker.VerifyFileSeal(detachedSeal ?? [], SHA256.HashData(buffer.AsSpan(0, length)), handle);
            return whole.IsVerified ? ParsedRecord.Unparsed : throw new SealIntegrityException($"the record's whole-file seal does not verify: {whole.Detail}");
        }

        (DicomFile File, int PixelDataOffset)? inPlace;
        DicomFile file;
        try
        {
            inPlace = await DicomFile.ReadInPlaceAsync(buffer, length, _limits.Value, cancellationToken).ConfigureAwait(false);
            file = inPlace?.File ?? await DicomFile.ReadAsync(new MemoryStream(buffer, 0, length, writable: false), _limits.Value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DicomFormatException or InvalidDataException or EndOfStreamException)
        {
            throw new SealIntegrityException("the sealed record is no longer a readable DICOM file");
        }

        var pixelDataOffset = inPlace?.PixelDataOffset ?? -1;
        if (kind == RecordSealKind.Detached)
        {
            var detached = Watermarker.VerifyDetachedSeal(file, detachedSeal ?? [], handle);
            return detached.IsVerified ? new ParsedRecord(file, pixelDataOffset) : throw new SealIntegrityException($"the record's detached seal does not verify: {detached.Detail}");
        }

        var verification = pixelDataOffset >= 0
            ? Watermarker.VerifyAndRestoreInPlace(file, buffer.AsSpan(pixelDataOffset, file.Dataset.Find(DicomTag.PixelData)!.Value.Length), handle)
            : Watermarker.VerifyAndRestore(file, handle);
        if (!verification.IsVerified)
        {
            var detail = verification.Status == SealStatus.NoMark ? "the record was sealed in its pixels, but no seal is found there" : verification.Detail;
            throw new SealIntegrityException($"the record's seal does not verify: {detail}");
        }

        if (pixelDataOffset < 0)
        {
            var original = await file.ToBytesAsync(cancellationToken).ConfigureAwait(false);
            if (original.Length != length)
            {
                throw new SealIntegrityException("the restored record does not have the length it was stored with");
            }

            original.CopyTo(buffer, 0);
        }

        if (originalSha256 is not null && !CryptographicOperations.FixedTimeEquals(SHA256.HashData(buffer.AsSpan(0, length)), originalSha256))
        {
            throw new SealIntegrityException("the restored record does not match the digest taken at upload");
        }

        return new ParsedRecord(file, pixelDataOffset);
    }

    /// <summary>
    /// Fingerprints a copy held in the first <paramref name="length"/> bytes of
    /// <paramref name="buffer"/> and already parsed as <paramref name="file"/> (its native Pixel Data
    /// at <paramref name="pixelDataOffset"/> in the buffer, or -1 when the file holds its own copy).
    /// The marked pixels are written over the buffer's when they lie there, and the buffer is the
    /// marked copy; otherwise the marked file is written out anew and returned. Unmarked (with the
    /// reason), the buffer is left as it was.
    /// </summary>
    public async Task<(byte[]? Rewritten, WatermarkRefusal? Refused)> FingerprintAsync(DicomFile file, byte[] buffer, int length, int pixelDataOffset, EgressMark mark, CancellationToken cancellationToken)
    {
        var before = file.Dataset.Find(DicomTag.PixelData)?.Value.Length;
        var result = Watermarker.Fingerprint(file, new FingerprintFields(mark.ConsumerId, mark.RequestId, mark.Time));
        if (!result.Embedded)
        {
            return (null, result.Refusal);
        }

        var marked = file.Dataset.Find(DicomTag.PixelData)!.Value;
        if (pixelDataOffset >= 0 && marked.Length == before && pixelDataOffset + marked.Length <= length)
        {
            marked.Span.CopyTo(buffer.AsSpan(pixelDataOffset));
            return (null, null);
        }

        return (await file.ToBytesAsync(cancellationToken).ConfigureAwait(false), null);
    }

    /// <summary>Parses a copy held in memory for <see cref="FingerprintAsync"/>: in place where it can (see <see cref="DicomFile.ReadInPlaceAsync"/>); null when it is not a readable DICOM file.</summary>
    public async Task<ParsedRecord?> ParseAsync(byte[] buffer, int length, CancellationToken cancellationToken)
    {
        try
        {
            if (await DicomFile.ReadInPlaceAsync(buffer, length, _limits.Value, cancellationToken).ConfigureAwait(false) is { } inPlace)
            {
                return new ParsedRecord(inPlace.File, inPlace.PixelDataOffset);
            }

            return new ParsedRecord(await DicomFile.ReadAsync(new MemoryStream(buffer, 0, length, writable: false), _limits.Value, cancellationToken).ConfigureAwait(false), -1);
        }
        catch (Exception e) when (e is DicomFormatException or InvalidDataException or EndOfStreamException)
        {
            return null;
        }
    }

    public void Dispose() => Watermarker.Dispose();
}
