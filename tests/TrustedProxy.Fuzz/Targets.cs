using System.Text;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;
using TrustedProxy.Server.DicomWeb;
using TrustedProxy.Testing;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Fuzz;

/// <summary>
/// One fuzz target per parser that takes bytes from outside. Each feeds the input to the parser's
/// real entry point, the way the proxy calls it, and swallows only the exceptions that parser
/// documents for bad input; anything else escapes and is a finding (SharpFuzz reports it to AFL as
/// a crash). Hangs are AFL's timeout; memory blow-ups its memory limit.
/// </summary>
internal static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["dicom"] = Dicom,
        ["multipart"] = Multipart,
        ["png"] = Png,
        ["policy"] = Policy,
        ["ot"] = ObliviousTransfer,
        ["envelope"] = Envelope,
    };

    private static readonly DicomReaderLimits DicomLimits = FuzzLimits.Dicom;

    private static readonly Deidentifier Deidentifier = new(new DeidentificationKeys(new byte[32], new byte[32], new byte[32]));

    /// <summary>
    /// An upload's path through the DICOM code: the header read that routes it, the whole-file read
    /// and write-back, and the de-identifier (which reads and rewrites the stream). Bad input:
    /// <see cref="DicomFormatException"/>, or a <see cref="DeidentificationRefusedException"/>.
    /// </summary>
    public static void Dicom(byte[] input)
    {
        Expect(() => DicomHeader.ReadAsync(new MemoryStream(input, writable: false), DicomLimits, CancellationToken.None));
        Expect(async () =>
        {
            var file = await DicomFile.ReadAsync(new MemoryStream(input, writable: false), DicomLimits);
            await file.ToBytesAsync();
        });
        Expect(() => Deidentifier.DeidentifyAsync(new MemoryStream(input, writable: false), Stream.Null, new DeidentificationProfile { AllowBurnedInAnnotation = true }, "Haukeland", DicomLimits, CancellationToken.None));

        static void Expect(Func<Task> action)
        {
            try
            {
                action().GetAwaiter().GetResult();
            }
            catch (DicomFormatException)
            {
            }
            catch (DeidentificationRefusedException)
            {
            }
        }
    }

    /// <summary>
    /// A STOW-RS request: the first line is the Content-Type header, the rest the body. The boundary
    /// is taken as the endpoint takes it, and the body read part by part with the endpoint's reader
    /// and limits (<see cref="StowRs.CreateReader"/>), each part's headers and body read through.
    /// Bad input: a refused Content-Type, or <see cref="IOException"/> / <see cref="InvalidDataException"/>
    /// from the reader (what the endpoint answers as multipart-framing).
    /// </summary>
    public static void Multipart(byte[] input)
    {
        var newline = Array.IndexOf(input, (byte)'\n');
        var header = Encoding.Latin1.GetString(input, 0, newline < 0 ? input.Length : newline).TrimEnd('\r');
        if (!MediaTypes.TryGetDicomBoundary(header, out var boundary, out _))
        {
            return;
        }

        var body = newline < 0 ? new MemoryStream() : new MemoryStream(input, newline + 1, input.Length - newline - 1, writable: false);
        var reader = StowRs.CreateReader(boundary, body, MultipartLimit);
        try
        {
            while (reader.ReadNextSectionAsync().GetAwaiter().GetResult() is { } section)
            {
                _ = section.ContentType?.Split(';')[0].Trim();
                section.Body.CopyToAsync(Stream.Null).GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
        }
    }

    // The endpoint's per-part limit (RecordStoreOptions.MaxUploadBytes, 4 GiB by default) is out of
    // reach of AFL's inputs (1 MiB at most); 64 KiB lets the fuzzer reach the over-limit path too.
    private const long MultipartLimit = 64 * 1024;

    private static readonly DicomWatermarker Watermarker = new(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    /// <summary>
    /// A PNG handed to leak tracing: decoded (<see cref="PngDecoder"/>), then traced for a mark as
    /// the leak tracer does. Bad input: <see cref="FormatException"/> from the decoder.
    /// </summary>
    public static void Png(byte[] input)
    {
        Trace(input);

        // Almost every mutation breaks a chunk's CRC and the decoder stops there; the same input
        // with its CRCs made right reaches the header checks, the inflater and the filters.
        if (WithCrcsRight(input) is { } repaired)
        {
            Trace(repaired);
        }

        static void Trace(byte[] png)
        {
            try
            {
                PngDecoder.Decode(png);
            }
            catch (FormatException)
            {
                return;
            }

            Watermarker.TracePng(png);
        }
    }

    // A copy with each whole chunk's CRC recomputed, or null when none was wrong.
    private static byte[]? WithCrcsRight(byte[] input)
    {
        if (!input.AsSpan().StartsWith(Rendering.PngChunks.Signature))
        {
            return null;
        }

        var copy = (byte[])input.Clone();
        var changed = false;
        for (var at = 8; at + 12 <= copy.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(copy.AsSpan(at));
            if (length > copy.Length - at - 12)
            {
                break;
            }

            var crcAt = at + 8 + (int)length;
            var crc = Rendering.PngChunks.Crc(copy.AsSpan(at + 4, 4 + (int)length));
            changed |= System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(copy.AsSpan(crcAt)) != crc;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(crcAt), crc);
            at = crcAt + 4;
        }

        return changed ? copy : null;
    }

    private static readonly PolicyOptions PolicyLimits = new();

    /// <summary>
    /// One policy file as the loader reads it from disk: size limit, strict UTF-8, YAML, the schema,
    /// the set's checks. Bad input: <see cref="PolicyLoadException"/> (or an error list from the decoding).
    /// </summary>
    public static void Policy(byte[] input)
    {
        var errors = new List<PolicyError>();
        if (PolicyLoader.Decode("fuzz.yaml", input, PolicyLimits, errors) is not { } file)
        {
            return;
        }

        try
        {
            PolicyLoader.Load([file]);
        }
        catch (PolicyLoadException)
        {
        }
    }

    /// <summary>
    /// The oblivious-transfer messages from a peer. The first byte picks the message: 0, an offer as
    /// the client parses it; 1, a choice as the server parses and answers it (the session id is the
    /// sender's own, which a client knows from the offer, so the fuzzer reaches the point checks and the
    /// answer); 2, an answer as the client opens it. Bad input: <see cref="OtProtocolException"/>.
    /// </summary>
    public static void ObliviousTransfer(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var message = input.AsSpan(1);
        try
        {
            switch (input[0] % 3)
            {
                case 0:
                    OtOffer.Parse(message);
                    break;
                case 1:
                {
                    var sender = new OtSender(OtCount, OtChoices);
                    byte[] choice = message.Length >= OtProtocol.SessionIdBytes ? [.. sender.Offer.SessionId, .. message[OtProtocol.SessionIdBytes..]] : message.ToArray();
                    sender.Answer(OtChoice.Parse(choice, sender.Offer.Choices), OtKeys);
                    break;
                }

                default:
                    OtReceiver.Value.Open(message);
                    break;
            }
        }
        catch (OtProtocolException)
        {
        }
    }

    // A small transfer (three records, two chosen): every shape check is the same as for a large one,
    // and an execution costs a few point multiplications rather than thousands.
    private const int OtCount = 3;
    private const int OtChoices = 2;
    private static readonly byte[][] OtKeys = [.. Enumerable.Range(0, OtCount).Select(i => Enumerable.Repeat((byte)i, OtProtocol.KeyBytes).ToArray())];
    private static readonly Lazy<OtReceiver> OtReceiver = new(() => new OtReceiver(new OtSender(OtCount, OtChoices).Offer, [0, 2]));

    /// <summary>The data key and object index the envelope seeds are sealed under (Seeds.cs), so mutations of them authenticate up to the mutated segment.</summary>
    public static readonly byte[] EnvelopeKey = [.. Enumerable.Range(0, DataKey.Bytes).Select(i => (byte)(0xA0 + i))];

    public static readonly byte[] EnvelopeIndex = [.. Enumerable.Range(0, SegmentedEnvelope.ObjectIndexLength).Select(i => (byte)(0x10 + i))];

    /// <summary>
    /// A stored record's envelope read back from the cloud. The first byte says how: with the
    /// plaintext length the index records (the next four bytes, big-endian) or without it (low bit
    /// set); the rest is the object. Read to the end, synchronously and asynchronously alike.
    /// Bad input: <see cref="EnvelopeIntegrityException"/>.
    /// </summary>
    public static void Envelope(byte[] input)
    {
        if (input.Length < 5)
        {
            return;
        }

        long? expected = (input[0] & 1) == 0 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(input.AsSpan(1)) : null;
        var asynchronous = (input[0] & 2) != 0;
        using var key = new DataKey([.. EnvelopeKey]);
        try
        {
            using var stream = new EnvelopeDecryptingStream(new MemoryStream(input, 5, input.Length - 5, writable: false), key, EnvelopeIndex, expected);
            if (asynchronous)
            {
                stream.CopyToAsync(Stream.Null).GetAwaiter().GetResult();
            }
            else
            {
                stream.CopyTo(Stream.Null);
            }
        }
        catch (EnvelopeIntegrityException)
        {
        }
    }
}
