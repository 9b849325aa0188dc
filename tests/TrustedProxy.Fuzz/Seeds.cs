using System.Buffers.Binary;
using System.Text;
using TrustedProxy.Crypto;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Fuzz;

/// <summary>
/// Seeds made by the project's own code for the formats that have no files to copy: envelopes
/// sealed by <see cref="EnvelopeEncryptingStream"/> under the harness's fixed key, OT messages from
/// <see cref="OtSender"/> and <see cref="OtReceiver"/>, PNGs from <see cref="PngWriter"/>. Written
/// once into tests/TrustedProxy.Fuzz/corpus by tools/fuzz.sh --seed and kept in the repository.
/// </summary>
internal static class Seeds
{
    public static IEnumerable<(string Name, byte[] Bytes)> Generate(string target) => target switch
    {
        "envelope" => Envelopes(),
        "ot" => ObliviousTransfer(),
        "png" => Pngs(),
        _ => throw new ArgumentException($"the {target} seeds are files copied by tools/fuzz.sh, not generated"),
    };

    private static IEnumerable<(string, byte[])> Envelopes()
    {
        foreach (var length in new[] { 0, 100, SegmentedEnvelope.MinSegmentSize, SegmentedEnvelope.MinSegmentSize + 300 })
        {
            var plaintext = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("DICM envelope seed ", (length / 19) + 1)))[..length];
            using var key = new DataKey([.. Targets.EnvelopeKey]);
            using var output = new MemoryStream();
            using (var envelope = new EnvelopeEncryptingStream(output, key, Targets.EnvelopeIndex, SegmentedEnvelope.MinSegmentSize, leaveOpen: true))
            {
                envelope.Write(plaintext);
                envelope.Complete();
            }

            // Mode byte (Targets.Envelope): 0 length known, read synchronously; 3 length unknown, asynchronously.
            var known = new byte[5];
            BinaryPrimitives.WriteUInt32BigEndian(known.AsSpan(1), (uint)length);
            yield return ($"known-{length}.bin", [.. known, .. output.ToArray()]);
            yield return ($"unknown-async-{length}.bin", [3, 0, 0, 0, 0, .. output.ToArray()]);
        }
    }

    private static IEnumerable<(string, byte[])> ObliviousTransfer()
    {
        var sender = new OtSender(3, 2);
        var receiver = new OtReceiver(sender.Offer, [0, 2]);
        var keys = Enumerable.Range(0, 3).Select(i => Enumerable.Repeat((byte)i, OtProtocol.KeyBytes).ToArray()).ToList();
        yield return ("offer.bin", [0, .. sender.Offer.ToBytes()]);
        yield return ("offer-large.bin", [0, .. new OtSender(OtProtocol.MaxCount, 7).Offer.ToBytes()]);
        yield return ("choice.bin", [1, .. receiver.Choice.ToBytes()]);
        yield return ("answer.bin", [2, .. sender.Answer(receiver.Choice, keys)]);
    }

    private static IEnumerable<(string, byte[])> Pngs()
    {
        // Grey and RGB, 8 and 16 bits, the None and Paeth filters (AFL mutates the filter byte into
        // the others), with and without the export's tEXt chunk. The palette, low-bit-depth, alpha
        // and interlaced seeds beside these in the corpus were made with PIL and by hand (docs/fuzzing.md).
        var text = new Dictionary<string, string> { [StoredValuePng.TextKeyword] = "stored values; BitsStored=12; PixelRepresentation=0; Offset=0; Frame=1; PhotometricInterpretation=MONOCHROME2" };
        var random = new Random(17);
        foreach (var (depth, channels) in new[] { (8, 1), (16, 1), (8, 3), (16, 3) })
        {
            foreach (var filter in new[] { PngFilter.None, PngFilter.Paeth })
            {
                var raw = new byte[6 * 5 * channels * depth / 8];
                random.NextBytes(raw);
                yield return ($"d{depth}-c{channels}-{filter}.png", PngWriter.Write(6, 5, depth, channels, raw, filter, depth == 16 && channels == 1 ? text : null));
            }
        }
    }
}
