using TrustedProxy.Dicom;

namespace TrustedProxy.Watermarking;

/// <summary>Watermarking settings.</summary>
/// <param name="MinimumPsnr">
/// No frame is marked below this PSNR (dB, peak 2^BitsStored − 1): the image is refused instead
/// (<see cref="WatermarkRefusalReason.QualityFloor"/>).
/// </param>
/// <param name="AllowDeflated">
/// Seal files in the deflated transfer syntax. Off by default: their pixels are restored bit-exact,
/// but writing the restored file deflates its data set anew, so the file's bytes (and digest) differ
/// from the upload's; such files are refused as not native, like compressed ones. (Fingerprinted
/// copies are never restored, so fingerprints are embedded whatever this says.)
/// </param>
internal sealed record WatermarkOptions(double MinimumPsnr = 45.0, bool AllowDeflated = false)
{
    public static WatermarkOptions Default { get; } = new();
}

/// <summary>The outcome of a seal or fingerprint: embedded (with its statistics) or refused (with the reason; the file is untouched).</summary>
internal sealed record WatermarkEmbedResult(WatermarkRefusal? Refusal, WatermarkStatistics? Statistics)
{
    public bool Embedded => Refusal is null;
}

/// <summary>How an image was marked, frame by frame.</summary>
internal sealed record WatermarkStatistics(IReadOnlyList<FrameEmbedReport> Frames)
{
    /// <summary>PSNR over every sample of every frame (dB, peak 2^BitsStored − 1).</summary>
    public double Psnr
    {
        get
        {
            var samples = Frames.Sum(f => (double)f.Samples);
            var error = Frames.Sum(f => (double)f.SumSquaredError);
            return error == 0 ? double.PositiveInfinity : 10 * Math.Log10(Frames[0].Peak * Frames[0].Peak / (error / samples));
        }
    }

    public double WorstFramePsnr => Frames.Min(f => f.Psnr);

    public int MessageBits => Frames[0].MessageBits;
}

/// <summary>What a retrieval-time check found.</summary>
internal enum SealStatus
{
    /// <summary>The seal is authentic and the pixels have been restored bit-exact (the file now holds them).</summary>
    Verified,

    /// <summary>
    /// No mark this key can read: never sealed (e.g. refused at ingest), sealed under another key, or
    /// damaged beyond reading its header. For a record the proxy knows it sealed, this is an integrity failure.
    /// </summary>
    NoMark,

    /// <summary>A mark was read but does not authenticate the pixels and header, or frames were reordered or mixed.</summary>
    IntegrityFailure,

    /// <summary>The pixels cannot carry a mark (compressed, unsupported layout): integrity rests on the record's signature.</summary>
    NotWatermarkable,
}

/// <summary>The result of <see cref="DicomWatermarker.VerifyAndRestore"/>; <see cref="Detail"/> never holds patient data.</summary>
internal sealed record SealVerification(SealStatus Status, SealPayload? Seal, string Detail)
{
    public bool IsVerified => Status == SealStatus.Verified;
}

internal enum TraceStatus
{
    /// <summary>An authentic fingerprint: the copy went to <see cref="FingerprintPayload.ConsumerTag"/> under <see cref="FingerprintPayload.RequestTag"/>.</summary>
    Fingerprinted,

    /// <summary>No fingerprint, but an authentic seal: an unfingerprinted original from the proxy (DICOM input only).</summary>
    Sealed,

    /// <summary>No mark that authenticates under this key.</summary>
    NoValidMark,
}

/// <summary>The result of a trace. <see cref="Frame"/> is the 0-based frame whose mark was read.</summary>
internal sealed record TraceResult(TraceStatus Status, FingerprintPayload? Fingerprint, SealPayload? Seal, int? Frame, string Detail);

/// <summary>
/// The entry points of reversible watermarking for the server:
/// <list type="bullet">
/// <item>ingest: <see cref="Seal"/> (record handle, origin, time, and a MAC over the original pixels and bound header fields);</item>
/// <item>retrieval: <see cref="VerifyAndRestore"/> (extract, restore bit-exact, authenticate; the file then holds the original);</item>
/// <item>egress: <see cref="Fingerprint"/> (consumer, request, time) on the restored original;</item>
/// <item>leak tracing: <see cref="Trace(DicomFile)"/> and <see cref="TracePng"/>.</item>
/// </list>
/// Methods that embed or restore replace the file's Pixel Data element with a new array on success
/// and leave the file untouched otherwise. Thread-safe: no mutable state.
/// </summary>
internal sealed class DicomWatermarker : IDisposable
{
    private readonly WatermarkKeys _keys;
    private readonly WatermarkKeystream _keystream;
    private readonly WatermarkOptions _options;

    /// <param name="key">At least 32 bytes; the server passes <c>ProxyKeyRing.Derive(WatermarkKeys.ProxyKeyPurpose)</c>.</param>
    /// <param name="options">Defaults to <see cref="WatermarkOptions.Default"/>.</param>
    public DicomWatermarker(ReadOnlySpan<byte> key, WatermarkOptions? options = null)
    {
        _keys = new WatermarkKeys(key);
        _keystream = new WatermarkKeystream(_keys.EmbeddingKey);
        _options = options ?? WatermarkOptions.Default;
    }

    /// <summary>The tag an organisation's name has in a seal.</summary>
    public ulong OriginTag(string organisation) => _keys.Tag("origin", organisation);

    /// <summary>The tag a consumer identifier has in a fingerprint.</summary>
    public ulong ConsumerTag(string consumerId) => _keys.Tag("consumer", consumerId);

    /// <summary>The tag a request identifier has in a fingerprint (store it with the request to look traces up).</summary>
    public ulong RequestTag(string requestId) => _keys.Tag("request", requestId);

    /// <summary>
    /// Ingest: seals every frame. On success the file's Pixel Data is the sealed one; on refusal
    /// (compressed, unsupported, too small, no capacity, quality floor) the file is untouched.
    /// </summary>
    /// <exception cref="ArgumentException">The handle is not 1 to 32 printable ASCII characters, or the time is out of range.</exception>
    public WatermarkEmbedResult Seal(DicomFile file, SealFields fields)
    {
        WatermarkPayload.ValidateHandle(fields.RecordHandle);
        if (!TryImage(file, out var image, out var refusal))
        {
            return new WatermarkEmbedResult(refusal, null);
        }

        var message = WatermarkPayload.CreateSeal(fields, _keys, SealBinding.Serialize(file), image.PixelData.Span);
        return EmbedEveryFrame(file, image, message);
    }

    /// <summary>Egress: fingerprints every frame of a (restored) original, as <see cref="Seal"/> does.</summary>
    public WatermarkEmbedResult Fingerprint(DicomFile file, FingerprintFields fields)
    {
        var message = WatermarkPayload.CreateFingerprint(fields, _keys);
        return PixelImage.TryFromDicom(file, out var image, out var refusal) ? EmbedEveryFrame(file, image, message) : new WatermarkEmbedResult(refusal, null);
    }

    /// <summary>
    /// Retrieval: extracts the seal of every frame, restores the original pixels and checks the MAC
    /// over them and the bound header fields. Only when <see cref="SealStatus.Verified"/> does the
    /// file change (to the restored original); otherwise it is left as given.
    /// </summary>
    /// <param name="file">The stored (sealed) file.</param>
    /// <param name="expectedHandle">When given, a seal naming another record is an integrity failure.</param>
    public SealVerification VerifyAndRestore(DicomFile file, string? expectedHandle = null)
    {
        if (!TryImage(file, out var image, out var refusal))
        {
            return new SealVerification(SealStatus.NotWatermarkable, null, refusal!.Message);
        }

        var restored = image.PixelData.ToArray();
        var verification = Verify(file, image, restored, expectedHandle);
        if (verification.IsVerified)
        {
            ReplacePixelData(file, restored);
        }

        return verification;
    }

    /// <summary>
    /// Retrieval without a copy: as <see cref="VerifyAndRestore"/>, but every frame is restored where
    /// it lies, in <paramref name="pixelData"/>, the writable memory that the file's Pixel Data value
    /// is a window on (as <see cref="DicomFile.ReadInPlaceAsync"/> leaves it), so that the buffer the
    /// file was read from becomes the original file. Frames are disjoint, so each is read whole before
    /// it is written back. Unless <see cref="SealStatus.Verified"/>, the pixels may be left partly
    /// restored: the caller must not use the buffer then.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="pixelData"/> is not the file's Pixel Data value.</exception>
    public SealVerification VerifyAndRestoreInPlace(DicomFile file, Span<byte> pixelData, string? expectedHandle = null)
    {
        if (!TryImage(file, out var image, out var refusal))
        {
            return new SealVerification(SealStatus.NotWatermarkable, null, refusal!.Message);
        }

        if (pixelData.Length != image.PixelData.Length || !pixelData.Overlaps(image.PixelData.Span, out var offset) || offset != 0)
        {
            throw new ArgumentException("the span to restore into is not the file's Pixel Data value", nameof(pixelData));
        }

        return Verify(file, image, pixelData, expectedHandle);
    }

    /// <summary>
    /// A seal kept beside the image instead of inside it (the same payload, ≤ 63 bytes), for images
    /// whose pixels cannot carry one: compressed, deflated, too small, refused. The server stores it
    /// with the record and checks it with <see cref="VerifyDetachedSeal"/>. For encapsulated pixel data
    /// the MAC covers every fragment as stored, so it binds the compressed bytes, not decoded pixels.
    /// </summary>
    public byte[] CreateDetachedSeal(DicomFile file, SealFields fields)
    {
        WatermarkPayload.ValidateHandle(fields.RecordHandle);
        var header = SealBinding.Serialize(file);
        return file.Dataset.Find(DicomTag.PixelData) is { Fragments: { } fragments }
            ? WatermarkPayload.CreateSeal(fields, _keys, header, fragments)
            : WatermarkPayload.CreateSeal(fields, _keys, header, (file.Dataset.Find(DicomTag.PixelData)?.Value ?? ReadOnlyMemory<byte>.Empty).Span);
    }

    /// <summary>A seal over a whole file by its SHA-256, for files that cannot be held or parsed whole; kept beside the file.</summary>
    public byte[] CreateFileSeal(SealFields fields, ReadOnlySpan<byte> fileSha256)
    {
        WatermarkPayload.ValidateHandle(fields.RecordHandle);
        return WatermarkPayload.CreateFileSeal(fields, _keys, fileSha256);
    }

    /// <summary>Checks a whole-file seal against a file's SHA-256, and that it names <paramref name="expectedHandle"/> and (if given) was sealed for <paramref name="expectedOrigin"/>.</summary>
    public SealVerification VerifyFileSeal(ReadOnlySpan<byte> seal, ReadOnlySpan<byte> fileSha256, string expectedHandle, string? expectedOrigin = null)
    {
        if (!WatermarkPayload.TryReadSeal(seal, out var payload))
        {
            return new SealVerification(SealStatus.NoMark, null, "the whole-file seal is not a well-formed seal");
        }

        if (!WatermarkPayload.VerifyFileSeal(seal, _keys, fileSha256))
        {
            return new SealVerification(SealStatus.IntegrityFailure, payload, "the whole-file seal does not authenticate the file's digest");
        }

        return payload.RecordHandle != expectedHandle ? new SealVerification(SealStatus.IntegrityFailure, payload, "the seal is for another record")
            : expectedOrigin is not null && payload.OriginTag != OriginTag(expectedOrigin) ? new SealVerification(SealStatus.IntegrityFailure, payload, "the seal names another origin organisation")
            : new SealVerification(SealStatus.Verified, payload, "authentic whole-file seal");
    }

    /// <summary>Checks a detached seal against the file as it is (nothing to restore); the file is never modified.</summary>
    public SealVerification VerifyDetachedSeal(DicomFile file, ReadOnlySpan<byte> seal, string? expectedHandle = null)
    {
        if (!WatermarkPayload.TryReadSeal(seal, out var payload))
        {
            return new SealVerification(SealStatus.NoMark, null, "the detached seal is not a well-formed seal");
        }

        var header = SealBinding.Serialize(file);
        var pixel = file.Dataset.Find(DicomTag.PixelData);
        var authentic = pixel is { Fragments: { } fragments }
            ? WatermarkPayload.VerifySeal(seal, _keys, header, fragments)
            : WatermarkPayload.VerifySeal(seal, _keys, header, (pixel?.Value ?? ReadOnlyMemory<byte>.Empty).Span);
        if (!authentic)
        {
            return new SealVerification(SealStatus.IntegrityFailure, payload, "the detached seal does not authenticate the pixels and the bound header fields");
        }

        return expectedHandle is not null && payload.RecordHandle != expectedHandle
            ? new SealVerification(SealStatus.IntegrityFailure, payload, "the seal is for another record")
            : new SealVerification(SealStatus.Verified, payload, "authentic detached seal");
    }

    /// <summary>Leak tracing on a DICOM file (never modified): the fingerprint of the first frame that has an authentic one, else an authentic seal, else none.</summary>
    public TraceResult Trace(DicomFile file)
    {
        if (!PixelImage.TryFromDicom(file, out var image, out var refusal))
        {
            return new TraceResult(TraceStatus.NoValidMark, null, null, null, $"the pixels cannot carry a mark: {refusal!.Message}");
        }

        using var buffer = image.RentFrameBuffer();
        var sawSeal = false;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            if (PredictionErrorExpansion.TryExtract(buffer, _keystream, out var mark))
            {
                if (WatermarkPayload.TryReadFingerprint(mark.Message, _keys, out var fingerprint))
                {
                    return new TraceResult(TraceStatus.Fingerprinted, fingerprint, null, frame, $"authentic fingerprint in frame {frame}");
                }

                sawSeal |= WatermarkPayload.KindOf(mark.Message) == WatermarkKind.Seal;
            }
        }

        if (sawSeal)
        {
            var verification = Verify(file, image, image.PixelData.ToArray(), expectedHandle: null);
            return verification.IsVerified
                ? new TraceResult(TraceStatus.Sealed, null, verification.Seal, 0, "no fingerprint; an authentic seal (an original as stored)")
                : new TraceResult(TraceStatus.NoValidMark, null, null, null, $"a seal was found but does not verify: {verification.Detail}");
        }

        return new TraceResult(TraceStatus.NoValidMark, null, null, null, "no mark authenticates under this key");
    }

    /// <summary>
    /// Leak tracing on a PNG of stored values (one frame). The stored bit depth is taken from the
    /// export's tEXt chunk when present, else tried from the PNG's depth down; an RGB PNG of a grey
    /// image is also tried as grey. Only a fingerprint can be authenticated from a PNG: a seal's
    /// MAC binds header fields a PNG does not have.
    /// </summary>
    public TraceResult TracePng(ReadOnlySpan<byte> png)
    {
        PngImage image;
        try
        {
            image = PngDecoder.Decode(png);
        }
        catch (FormatException e)
        {
            return new TraceResult(TraceStatus.NoValidMark, null, null, null, $"not a PNG this decoder reads: {e.Message}");
        }

        var depths = new List<int>();
        if (StoredValuePng.RecordedBitsStored(image) is { } recorded)
        {
            depths.Add(recorded);
        }

        for (var bits = Math.Max(2, image.BitDepth); bits >= 2 && bits >= image.BitDepth - 8; bits--)
        {
            if (!depths.Contains(bits))
            {
                depths.Add(bits);
            }
        }

        var channelCounts = image.IsGreyAsColour() ? new[] { 3, 1 } : [image.Channels];
        var sawSeal = false;
        foreach (var channels in channelCounts)
        {
            foreach (var bits in depths)
            {
                if (image.ToFrame(bits, channels) is not { } frame || !PredictionErrorExpansion.TryExtract(frame, _keystream, out var mark))
                {
                    continue;
                }

                if (WatermarkPayload.TryReadFingerprint(mark.Message, _keys, out var fingerprint))
                {
                    return new TraceResult(TraceStatus.Fingerprinted, fingerprint, null, mark.FrameIndex,
                        $"authentic fingerprint of frame {mark.FrameIndex}, read as {bits}-bit {(channels == 1 ? "grey" : "RGB")}");
                }

                sawSeal |= WatermarkPayload.KindOf(mark.Message) == WatermarkKind.Seal;
            }
        }

        return new TraceResult(TraceStatus.NoValidMark, null, null, null,
            sawSeal ? "a seal mark is present but cannot be authenticated from a PNG (it binds DICOM header fields)" : "no mark authenticates under this key");
    }

    /// <summary>
    /// Removes an authentic fingerprint from every frame, giving back the pixels the copy was made
    /// from bit for bit (only the key's holder can). False, and the file untouched, when a frame
    /// carries no authentic fingerprint or frames were reordered.
    /// </summary>
    public bool RemoveFingerprint(DicomFile file)
    {
        if (!PixelImage.TryFromDicom(file, out var image, out _))
        {
            return false;
        }

        var restored = image.PixelData.ToArray();
        using var buffer = image.RentFrameBuffer();
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            if (!PredictionErrorExpansion.TryExtract(buffer, _keystream, out var mark) || mark.FrameIndex != frame || !WatermarkPayload.TryReadFingerprint(mark.Message, _keys, out _))
            {
                return false;
            }

            image.WriteFrame(frame, buffer, restored);
        }

        ReplacePixelData(file, restored);
        return true;
    }

    /// <summary>
    /// About how many message bits the tightest frame can carry (a seal needs up to 504, a fingerprint
    /// 304); 0 when the pixels cannot carry a mark at all. <see cref="Seal"/> decides exactly.
    /// </summary>
    public static int EstimateCapacity(DicomFile file)
    {
        if (!PixelImage.TryFromDicom(file, out var image, out _))
        {
            return 0;
        }

        using var buffer = image.RentFrameBuffer();
        var capacity = int.MaxValue;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            capacity = Math.Min(capacity, PredictionErrorExpansion.EstimateCapacity(buffer));
        }

        return capacity;
    }

    public void Dispose() => _keys.Dispose();

    /// <summary>For sealing and restoring, where the restored file must be the upload byte for byte.</summary>
    private bool TryImage(DicomFile file, out PixelImage image, out WatermarkRefusal? refusal)
    {
        if (file.TransferSyntax.Deflated && !_options.AllowDeflated)
        {
            image = null!;
            refusal = new WatermarkRefusal(WatermarkRefusalReason.NotNative,
                $"the data set is deflated ({file.TransferSyntax.Uid}): its pixels could be restored, but not the file's bytes");
            return false;
        }

        return PixelImage.TryFromDicom(file, out image, out refusal);
    }

    private WatermarkEmbedResult EmbedEveryFrame(DicomFile file, PixelImage image, byte[] message)
    {
        var output = image.PixelData.ToArray();
        using var buffer = image.RentFrameBuffer();
        var reports = new List<FrameEmbedReport>(image.Frames);
        try
        {
            for (var frame = 0; frame < image.Frames; frame++)
            {
                image.ReadFrame(frame, buffer);
                reports.Add(PredictionErrorExpansion.Embed(buffer, message, frame, _keystream, _options.MinimumPsnr));
                image.WriteFrame(frame, buffer, output);
            }
        }
        catch (WatermarkRefusedException e)
        {
            return new WatermarkEmbedResult(e.Refusal, null);
        }

        ReplacePixelData(file, output);
        return new WatermarkEmbedResult(null, new WatermarkStatistics(reports));
    }

    /// <summary>
    /// Extracts every frame (each must carry the same message with its own index), restores it into
    /// <paramref name="restored"/> (laid out like the Pixel Data, and possibly the very same memory),
    /// and authenticates the seal over the restored pixels; the file's elements are not replaced.
    /// </summary>
    private SealVerification Verify(DicomFile file, PixelImage image, Span<byte> restored, string? expectedHandle)
    {
        using var buffer = image.RentFrameBuffer();
        byte[]? message = null;
        for (var frame = 0; frame < image.Frames; frame++)
        {
            image.ReadFrame(frame, buffer);
            if (!PredictionErrorExpansion.TryExtract(buffer, _keystream, out var mark))
            {
                return frame == 0
                    ? new SealVerification(SealStatus.NoMark, null, "no mark readable with this key")
                    : new SealVerification(SealStatus.IntegrityFailure, null, $"frame {frame} carries no readable mark");
            }

            if (mark.FrameIndex != frame)
            {
                return new SealVerification(SealStatus.IntegrityFailure, null, $"frame {frame} carries the mark of frame {mark.FrameIndex}: frames were reordered or replaced");
            }

            if (message is null)
            {
                message = mark.Message;
            }
            else if (!message.AsSpan().SequenceEqual(mark.Message))
            {
                return new SealVerification(SealStatus.IntegrityFailure, null, $"frame {frame} carries another mark than frame 0");
            }

            image.WriteFrame(frame, buffer, restored);
        }

        if (!WatermarkPayload.TryReadSeal(message, out var seal))
        {
            return WatermarkPayload.KindOf(message!) == WatermarkKind.Fingerprint
                ? new SealVerification(SealStatus.NoMark, null, "the image carries a fingerprint, not a seal")
                : new SealVerification(SealStatus.IntegrityFailure, null, "the mark is not a well-formed seal");
        }

        if (!WatermarkPayload.VerifySeal(message, _keys, SealBinding.Serialize(file), restored))
        {
            return new SealVerification(SealStatus.IntegrityFailure, seal, "the seal does not authenticate the restored pixels and the bound header fields");
        }

        return expectedHandle is not null && seal.RecordHandle != expectedHandle
            ? new SealVerification(SealStatus.IntegrityFailure, seal, "the image is sealed for another record")
            : new SealVerification(SealStatus.Verified, seal, "authentic seal; pixels restored bit-exact");
    }

    private static void ReplacePixelData(DicomFile file, byte[] pixelData)
    {
        var element = file.Dataset.Find(DicomTag.PixelData)!;
        file.Dataset.Set(DicomElement.Create(DicomTag.PixelData, element.VR, pixelData));
    }
}
