using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TrustedProxy.Watermarking;

/// <summary>
/// Reversible watermarking of one frame by prediction-error expansion with histogram shifting:
/// Sachnev, Kim, Nam, Suresh and Shi, "Reversible watermarking algorithm using sorting and
/// prediction", IEEE TCSVT 19(7), 2009 (rhombus prediction, two passes over a checkerboard,
/// low-complexity pixels first), with the expansion threshold Δ of Thodi and Rodríguez,
/// "Expansion embedding techniques for reversible watermarking", IEEE TIP 16(3), 2007.
/// docs/watermarking.md describes the layout; the essentials:
/// <list type="bullet">
/// <item>Each pixel of the interior (rows 2..R−3, columns 1..C−2) of every channel plane is
/// predicted from its four neighbours, which belong to the other pass: pass A is (r+c) even and is
/// embedded first, pass B is embedded on top of it and extracted first, so both sides always see
/// the same context.</item>
/// <item>Only pixels whose context complexity is at most a threshold T are used, in raster order,
/// until the bits run out; with a prediction error e ∈ [−Δ, Δ) a pixel carries one bit
/// (e → 2e + b), otherwise it is shifted by Δ. No sample moves by more than Δ (2Δ next to the range ends).</item>
/// <item>Overflow: a pixel whose prediction lies in the upper half of the range is handled mirrored
/// (bitwise NOT), so that flat regions at either end of the range carry bits without overflow. A
/// pixel that could still leave the range is first pulled to the boundary value min+Δ (or max−Δ),
/// and every processed pixel found at a boundary value after extraction gets a location-map symbol
/// (its distance to the range end), embedded at the tail of the same pass.</item>
/// <item>The header (Δ, T and bit count of pass B) replaces the least significant bits of 56 pixels
/// of the first and last rows, which no prediction uses; their original bits travel in the payload.
/// Pass B carries pass A's parameters.</item>
/// <item>Every embedded bit is XORed with a keyed stream (<see cref="WatermarkKeystream"/>).</item>
/// </list>
/// </summary>
internal static class PredictionErrorExpansion
{
    /// <summary>Header bits written over reserved least significant bits: magic+version 8, Δ index 8, T 16, bit count 24.</summary>
    public const int HeaderBits = 56;

    /// <summary>Pass A's parameters, carried at the head of pass B: Δ index 8, T 16, bit count 24.</summary>
    public const int PassInfoBits = 48;

    public const int MaxMessageBytes = 255;

    /// <summary>Complexity levels: the thresholds T can take.</summary>
    internal const int Levels = 1024;

    private const int FrameIndexBits = 32;
    private const int LengthBits = 8;
    private const int CountBits = 24;
    private const byte MagicAndVersion = 0xA1;
    private const byte HeaderPart = 0, PassAPart = 1, PassBPart = 2;

    // Planning grows its prefix of rows until it holds this many times the bits needed (room to pick smooth pixels), starting from about this many pixels.
    private const int CapacityMargin = 4;
    private const int FirstBandPixels = 8192;

    /// <summary>
    /// The expansion thresholds Δ a pass may use, smallest (least distortion) first: 1, 2, 3, 4, 6, 8, 12, …
    /// up to 1.5 × 2^29, so that wide ranges (32-bit dose grids) find theirs; a frame uses those with
    /// 2Δ below its range, and the PSNR floor decides what is acceptable.
    /// </summary>
    internal static readonly int[] Deltas = BuildDeltas();

    private static readonly int K = Deltas.Length;
    private const int TableSize = 4096;
    private static readonly byte[] BucketTable = BuildBucketTable();
    private static readonly byte[] ExactTable = BuildExactTable();

    /// <summary>Message bits a frame needs beyond the message itself (frame index, length, saved header bits, pass A's parameters).</summary>
    public static int OverheadBits => FrameIndexBits + LengthBits + HeaderBits + PassInfoBits;

    /// <summary>
    /// Embeds <paramref name="message"/> and <paramref name="frameIndex"/> into <paramref name="frame"/>.
    /// Refuses (<see cref="WatermarkRefusedException"/>) when the frame is too small, cannot carry the
    /// bits, or would fall below <paramref name="minimumPsnr"/> dB; after a refusal the buffer's content is undefined.
    /// </summary>
    public static FrameEmbedReport Embed(FrameBuffer frame, ReadOnlySpan<byte> message, int frameIndex, WatermarkKeystream keystream, double minimumPsnr)
    {
        if (message.Length > MaxMessageBytes)
        {
            throw new ArgumentException($"a message is at most {MaxMessageBytes} bytes", nameof(message));
        }

        CheckGeometry(frame);
        var reserved = ReservedIndices(frame);
        var kLimit = DeltaLimit(frame);

        // The data both passes carry: frame index, length, message, then the reserved pixels' own LSBs.
        var dataLength = FrameIndexBits + LengthBits + 8 * message.Length + HeaderBits;
        var data = new byte[dataLength];
        var at = WriteBits(data, 0, (uint)frameIndex, FrameIndexBits);
        at = WriteBits(data, at, (uint)message.Length, LengthBits);
        foreach (var b in message)
        {
            at = WriteBits(data, at, b, 8);
        }

        foreach (var index in reserved)
        {
            data[at++] = (byte)(frame.Values[index] & 1);
        }

        var capDiff = ArrayPool<int>.Shared.Rent(Levels * (kLimit + 1));
        var zoneDiff = ArrayPool<int>.Shared.Rent(Levels * (kLimit + 1));
        try
        {
            var undo = new List<(int Index, int Value)>();

            // Sachnev et al. split the payload evenly between the passes; pass B also carries A's parameters.
            var lengthA = (dataLength + 1) / 2;
            var planA = PlanPass(frame, 0, lengthA, kLimit, capDiff, zoneDiff, out var netA);
            if (planA is null)
            {
                // Pass A cannot take half (the whole frame was measured): give it what it can.
                lengthA = (int)Math.Min(lengthA, netA);
                planA = lengthA > 0 ? Plan(capDiff, zoneDiff, kLimit, lengthA, long.MaxValue, out _) : null;
            }

            for (var attempt = 0; ; attempt++)
            {
                var distortion = new Distortion();
                undo.Clear();
                int kA = 0, tA = 0, countA = 0;
                if (lengthA > 0)
                {
                    var plan = planA ?? throw new InvalidOperationException("pass A's capacity was measured but cannot be planned");
                    (kA, tA) = (plan.K, plan.T);
                    var queueA = new BitQueue(checked((int)(lengthA + plan.LocationMapBound)), keystream, PassAPart);
                    queueA.Enqueue(data.AsSpan(0, lengthA));
                    countA = EmbedPass(frame, 0, plan.K, plan.T, queueA, undo, ref distortion);
                }

                var needB = PassInfoBits + dataLength - lengthA;
                if (PlanPass(frame, 1, needB, kLimit, capDiff, zoneDiff, out var netB) is { } planB)
                {
                    var queueB = new BitQueue(checked((int)(needB + planB.LocationMapBound)), keystream, PassBPart);
                    var info = new byte[PassInfoBits];
                    WriteBits(info, WriteBits(info, WriteBits(info, 0, (uint)kA, 8), (uint)tA, 16), (uint)countA, CountBits);
                    queueB.Enqueue(info);
                    queueB.Enqueue(data.AsSpan(lengthA));
                    var countB = EmbedPass(frame, 1, planB.K, planB.T, queueB, undo: null, ref distortion);
                    if (countA >= 1 << CountBits || countB >= 1 << CountBits)
                    {
                        throw new WatermarkRefusedException(WatermarkRefusalReason.InsufficientCapacity, "the location map would not fit the header's bit counts");
                    }

                    WriteHeader(frame, reserved, keystream, planB.K, planB.T, countB, ref distortion);
                    var report = new FrameEmbedReport(
                        frameIndex, 8 * message.Length, HeaderBits + countA + countB, Deltas[kA], Deltas[planB.K], tA, planB.T,
                        countA + countB - dataLength - PassInfoBits, distortion.Changed, distortion.MaxAbs, distortion.SumSquares, frame.Length, frame.Peak);
                    if (report.Psnr < minimumPsnr)
                    {
                        throw new WatermarkRefusedException(WatermarkRefusalReason.QualityFloor,
                            $"frame {frameIndex}: carrying {8 * message.Length} message bits would lower the PSNR to {report.Psnr:F1} dB, below the floor of {minimumPsnr:F1} dB");
                    }

                    return report;
                }

                // Pass B cannot take the rest even over the whole frame (netB is then its whole capacity): undo pass A and give it more.
                for (var i = undo.Count - 1; i >= 0; i--)
                {
                    frame.Values[undo[i].Index] = undo[i].Value;
                }

                var moreA = dataLength + PassInfoBits - (int)Math.Min(netB, int.MaxValue);
                if (attempt == 0 && moreA > lengthA)
                {
                    lengthA = moreA;
                    planA = PlanPass(frame, 0, lengthA, kLimit, capDiff, zoneDiff, out netA);
                    if (planA is not null)
                    {
                        continue;
                    }
                }

                var capacity = EstimateCapacity(frame);
                throw new WatermarkRefusedException(WatermarkRefusalReason.InsufficientCapacity,
                    $"frame {frameIndex} ({frame.Rows}×{frame.Columns}×{frame.Channels}, {frame.BitsStored} bits) can carry about {capacity} message bits; {8 * message.Length} are needed");
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(capDiff);
            ArrayPool<int>.Shared.Return(zoneDiff);
        }
    }

    /// <summary>
    /// Extracts the mark of <paramref name="frame"/> and restores the frame's original samples in
    /// place. False when there is no mark this key can read (then the buffer's content is undefined).
    /// </summary>
    public static bool TryExtract(FrameBuffer frame, WatermarkKeystream keystream, out ExtractedFrameMark mark)
    {
        mark = null!;
        if (!HasRoom(frame))
        {
            return false;
        }

        var reserved = ReservedIndices(frame);
        var kLimit = DeltaLimit(frame);
        Span<byte> header = stackalloc byte[HeaderBits];
        for (var i = 0; i < HeaderBits; i++)
        {
            header[i] = (byte)(frame.Values[reserved[i]] & 1);
        }

        keystream.Apply(HeaderPart, header);
        var magic = ReadBits(header, 0, 8);
        var kB = (int)ReadBits(header, 8, 8);
        var tB = (int)ReadBits(header, 16, 16);
        var countB = (int)ReadBits(header, 32, CountBits);
        if (magic != MagicAndVersion || kB >= kLimit || tB >= Levels || countB < PassInfoBits || countB > PassPixels(frame, 1))
        {
            return false;
        }

        var bitsB = new byte[countB];
        var boundaryB = new List<int>();
        if (!ExtractPass(frame, 1, kB, tB, bitsB, boundaryB))
        {
            return false;
        }

        keystream.Apply(PassBPart, bitsB);
        var mapB = boundaryB.Count * SymbolBits(kB);
        if (countB < PassInfoBits + mapB || !ApplyLocationMap(frame, kB, boundaryB, bitsB.AsSpan(countB - mapB)))
        {
            return false;
        }

        var kA = (int)ReadBits(bitsB, 0, 8);
        var tA = (int)ReadBits(bitsB, 8, 16);
        var countA = (int)ReadBits(bitsB, 24, CountBits);
        if (kA >= kLimit || tA >= Levels || countA > PassPixels(frame, 0))
        {
            return false;
        }

        var bitsA = new byte[countA];
        var boundaryA = new List<int>();
        if (!ExtractPass(frame, 0, kA, tA, bitsA, boundaryA))
        {
            return false;
        }

        keystream.Apply(PassAPart, bitsA);
        var mapA = boundaryA.Count * SymbolBits(kA);
        if (countA < mapA || !ApplyLocationMap(frame, kA, boundaryA, bitsA.AsSpan(countA - mapA)))
        {
            return false;
        }

        var data = new byte[countA - mapA + countB - mapB - PassInfoBits];
        bitsA.AsSpan(0, countA - mapA).CopyTo(data);
        bitsB.AsSpan(PassInfoBits, countB - mapB - PassInfoBits).CopyTo(data.AsSpan(countA - mapA));
        if (data.Length < FrameIndexBits + LengthBits + HeaderBits)
        {
            return false;
        }

        var frameIndex = (int)ReadBits(data, 0, FrameIndexBits);
        var length = (int)ReadBits(data, FrameIndexBits, LengthBits);
        if (data.Length != FrameIndexBits + LengthBits + 8 * length + HeaderBits)
        {
            return false;
        }

        var message = new byte[length];
        var at = FrameIndexBits + LengthBits;
        for (var i = 0; i < length; i++, at += 8)
        {
            message[i] = (byte)ReadBits(data, at, 8);
        }

        foreach (var index in reserved)
        {
            frame.Values[index] = (frame.Values[index] & ~1) | data[at++];
        }

        mark = new ExtractedFrameMark(frameIndex, message, countA + countB + HeaderBits);
        return true;
    }

    /// <summary>
    /// About how many message bits the frame can carry (pass B measured on the unmarked frame, so an
    /// estimate; <see cref="Embed"/> decides exactly). 0 when the frame is too small.
    /// </summary>
    public static int EstimateCapacity(FrameBuffer frame)
    {
        if (!HasRoom(frame))
        {
            return 0;
        }

        var kLimit = DeltaLimit(frame);
        var capDiff = ArrayPool<int>.Shared.Rent(Levels * (kLimit + 1));
        var zoneDiff = ArrayPool<int>.Shared.Rent(Levels * (kLimit + 1));
        try
        {
            ClearHistograms(capDiff, zoneDiff, kLimit);
            Histogram(frame, 0, 2, frame.Rows - 2, kLimit, capDiff, zoneDiff);
            Plan(capDiff, zoneDiff, kLimit, long.MaxValue, long.MaxValue, out var netA);
            ClearHistograms(capDiff, zoneDiff, kLimit);
            Histogram(frame, 1, 2, frame.Rows - 2, kLimit, capDiff, zoneDiff);
            Plan(capDiff, zoneDiff, kLimit, long.MaxValue, long.MaxValue, out var netB);
            return (int)Math.Clamp(netA + netB - OverheadBits, 0, int.MaxValue);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(capDiff);
            ArrayPool<int>.Shared.Return(zoneDiff);
        }
    }

    private static void CheckGeometry(FrameBuffer frame)
    {
        if (!HasRoom(frame))
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.TooSmall,
                $"a {frame.Rows}×{frame.Columns} frame with {frame.Channels} channel(s) is too small: at least 5 rows, 3 columns and {HeaderBits} pixels in the first and last rows are needed");
        }
    }

    private static bool HasRoom(FrameBuffer frame) => frame.Rows >= 5 && frame.Columns >= 3 && frame.Channels * 2 * frame.Columns >= HeaderBits;

    /// <summary>The pixels whose LSBs carry the header: first row, then last row, of each channel in turn. No prediction reads them.</summary>
    private static int[] ReservedIndices(FrameBuffer frame)
    {
        var indices = new int[HeaderBits];
        var columns = frame.Columns;
        for (var i = 0; i < HeaderBits; i++)
        {
            var channel = i / (2 * columns);
            var j = i % (2 * columns);
            var row = j < columns ? 0 : frame.Rows - 1;
            indices[i] = channel * frame.PlaneLength + row * columns + j % columns;
        }

        return indices;
    }

    /// <summary>How many Δ values keep min+Δ below max−Δ (so the two boundary values stay distinct).</summary>
    private static int DeltaLimit(FrameBuffer frame)
    {
        var range = (long)frame.Max - frame.Min;
        var k = 0;
        while (k < K && 2L * Deltas[k] < range)
        {
            k++;
        }

        return k;
    }

    private static int PassPixels(FrameBuffer frame, int pass)
    {
        long count = 0;
        for (var r = 2; r <= frame.Rows - 3; r++)
        {
            var first = 1 + ((r + 1 + pass) & 1);
            if (first <= frame.Columns - 2)
            {
                count += (frame.Columns - 2 - first) / 2 + 1;
            }
        }

        return (int)Math.Min(int.MaxValue, count * frame.Channels);
    }

    /// <summary>Bits of one location-map symbol, a distance in [0, Δ].</summary>
    private static int SymbolBits(int k) => 32 - BitOperations.LeadingZeroCount((uint)Deltas[k]);

    /// <summary>4 × the mean absolute deviation of the four neighbours from their mean: how unpredictable the pixel is likely to be.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Complexity(long up, long down, long left, long right, long sum) =>
        Math.Abs(4 * up - sum) + Math.Abs(4 * down - sum) + Math.Abs(4 * left - sum) + Math.Abs(4 * right - sum);

    /// <summary>The largest complexity whose level is at most <paramref name="t"/> (levels grow with complexity), so that scans compare raw values.</summary>
    internal static long ComplexityLimit(int t)
    {
        if (t >= Levels - 1)
        {
            return long.MaxValue;
        }

        long low = 0, high = long.MaxValue / 8;
        while (low < high)
        {
            var middle = low + (high - low + 1) / 2;
            if (Quantize(middle) <= t)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        return low;
    }

    /// <summary>Complexity (4 × the mean absolute deviation of the four neighbours) to one of <see cref="Levels"/> levels: exact below 128, then 32 steps per octave.</summary>
    internal static int Quantize(long complexity)
    {
        if (complexity < 128)
        {
            return (int)complexity;
        }

        var octave = 63 - BitOperations.LeadingZeroCount((ulong)complexity) - 7;
        var level = 128 + 32 * octave + (((int)(complexity >> octave) - 128) >> 2);
        return Math.Min(level, Levels - 1);
    }

    /// <summary>
    /// For one pass, per complexity level and Δ index (as differences along Δ): pixels that can carry a
    /// bit without a location-map symbol, and pixels that will need a symbol. Zone pixels are not
    /// counted as capacity, so the plan is a lower bound the embedding always meets.
    /// </summary>
    private static void Histogram(FrameBuffer frame, int pass, int firstRow, int endRow, int kLimit, int[] capDiff, int[] zoneDiff)
    {
        // Buckets are clamped to kLimit, the slot for "at no usable Δ".
        var width = kLimit + 1;
        var cap = capDiff.AsSpan(0, Levels * width);
        var zone = zoneDiff.AsSpan(0, Levels * width);
        // Indices stay inside the array by construction (rows 2..R−3, columns 1..C−2), so no bounds checks.
        ref var origin = ref MemoryMarshal.GetArrayDataReference(frame.Values);
        int columns = frame.Columns, plane = frame.PlaneLength;
        long lo = frame.Min, hi = frame.Max;
        for (var channel = 0; channel < frame.Channels; channel++)
        {
            for (var r = firstRow; r < endRow; r++)
            {
                var row = channel * plane + r * columns;
                for (var c = 1 + ((r + 1 + pass) & 1); c <= columns - 2; c += 2)
                {
                    ref var cell = ref Unsafe.Add(ref origin, row + c);
                    long up = Unsafe.Subtract(ref cell, columns), down = Unsafe.Add(ref cell, columns), left = Unsafe.Subtract(ref cell, 1), right = Unsafe.Add(ref cell, 1);
                    var sum = up + down + left + right;
                    var q = Quantize(Complexity(up, down, left, right, sum));
                    long x = cell, prediction, xm;
                    if (sum >= 0)
                    {
                        prediction = (-4 - sum) >> 2;
                        xm = ~x;
                    }
                    else
                    {
                        prediction = sum >> 2;
                        xm = x;
                    }

                    var e = xm - prediction;
                    var eb = Math.Min(Bucket(e >= 0 ? e + 1 : -e), kLimit);
                    var zb = Math.Min(e < 0 ? Bucket(xm - lo + 1) : Bucket(hi - xm + 1), kLimit);
                    var at = q * width;
                    if (eb < zb)
                    {
                        cap[at + eb]++;
                        cap[at + zb]--;
                    }

                    zone[at + zb]++;
                    var exact = Exact(xm - lo);
                    if (exact < zb)
                    {
                        MarkExact(cap, zone, at, exact, eb);
                    }

                    exact = Exact(hi - xm);
                    if (exact < zb)
                    {
                        MarkExact(cap, zone, at, exact, eb);
                    }
                }
            }
        }

        static void MarkExact(Span<int> cap, Span<int> zone, int at, int k, int eb)
        {
            // A pixel exactly on a boundary value needs a symbol (distance 0) and is not counted as capacity at that Δ.
            zone[at + k]++;
            zone[at + k + 1]--;
            if (k >= eb)
            {
                cap[at + k]--;
                cap[at + k + 1]++;
            }
        }
    }

    private static void ClearHistograms(int[] capDiff, int[] zoneDiff, int kLimit)
    {
        capDiff.AsSpan(0, Levels * (kLimit + 1)).Clear();
        zoneDiff.AsSpan(0, Levels * (kLimit + 1)).Clear();
    }

    /// <summary>
    /// Plans a pass on a prefix of rows that grows (doubling) until it offers <see cref="CapacityMargin"/>
    /// times the bits needed, or is the whole frame. Selecting the smoothest pixels of the whole frame
    /// (as Sachnev et al. sort) would spread a small payload over all of it, and every embedding and
    /// extraction would then walk the whole frame; within a prefix with room to choose, the distortion
    /// is as small and the work is proportional to the payload. The decoder needs no region: it stops
    /// after the pass's bit count, which the plan guarantees to reach inside the prefix.
    /// When null (infeasible), <paramref name="bestNet"/> is the whole frame's capacity for the pass.
    /// </summary>
    private static PassPlan? PlanPass(FrameBuffer frame, int pass, long need, int kLimit, int[] capDiff, int[] zoneDiff, out long bestNet)
    {
        ClearHistograms(capDiff, zoneDiff, kLimit);
        var endRow = frame.Rows - 2;
        var passPixelsPerRow = Math.Max(1, (frame.Columns - 2) / 2 * frame.Channels);
        var band = Math.Max(4, (int)Math.Min(endRow, FirstBandPixels / passPixelsPerRow));
        var row = 2;
        while (true)
        {
            var next = (int)Math.Min(endRow, (long)row + band);
            Histogram(frame, pass, row, next, kLimit, capDiff, zoneDiff);
            row = next;
            var wholeFrame = row >= endRow;
            var plan = Plan(capDiff, zoneDiff, kLimit, need, wholeFrame ? long.MaxValue : CapacityMargin * need, out bestNet);
            if (wholeFrame || (plan is not null && bestNet >= CapacityMargin * need))
            {
                return plan;
            }

            band *= 2;
        }
    }

    /// <summary>
    /// The smallest Δ, then the smallest T, whose capacity covers <paramref name="need"/> bits plus the
    /// location map; null when none does. <paramref name="bestNet"/> is the most any (Δ, T) examined offers.
    /// </summary>
    private static PassPlan? Plan(int[] capDiff, int[] zoneDiff, int kLimit, long need, long enough, out long bestNet)
    {
        // Stops early once a plan exists and some (Δ, T) offers `enough`; otherwise bestNet is the maximum.
        var width = kLimit + 1;
        Span<long> capRun = stackalloc long[Levels];
        Span<long> zoneRun = stackalloc long[Levels];
        capRun.Clear();
        zoneRun.Clear();
        PassPlan? plan = null;
        bestNet = 0;
        for (var k = 0; k < kLimit; k++)
        {
            long capacity = 0, zone = 0;
            var bits = SymbolBits(k);
            for (var q = 0; q < Levels; q++)
            {
                capRun[q] += capDiff[q * width + k];
                zoneRun[q] += zoneDiff[q * width + k];
                capacity += capRun[q];
                zone += zoneRun[q];
                var net = capacity - bits * zone;
                bestNet = Math.Max(bestNet, net);
                if (plan is null && net >= need)
                {
                    plan = new PassPlan(k, q, bits * zone);
                }
            }

            if (plan is not null && bestNet >= enough)
            {
                break;
            }
        }

        return plan;
    }

    private static int EmbedPass(FrameBuffer frame, int pass, int k, int t, BitQueue queue, List<(int Index, int Value)>? undo, ref Distortion distortion)
    {
        ref var origin = ref MemoryMarshal.GetArrayDataReference(frame.Values);
        int rows = frame.Rows, columns = frame.Columns, plane = frame.PlaneLength;
        long lo = frame.Min, hi = frame.Max;
        long delta = Deltas[k], lowBoundary = lo + delta, highBoundary = hi - delta;
        var symbolBits = SymbolBits(k);
        var limit = ComplexityLimit(t);
        for (var channel = 0; channel < frame.Channels; channel++)
        {
            for (var r = 2; r <= rows - 3; r++)
            {
                var row = channel * plane + r * columns;
                for (var c = 1 + ((r + 1 + pass) & 1); c <= columns - 2; c += 2)
                {
                    if (queue.IsEmpty)
                    {
                        return queue.Dequeued;
                    }

                    var p = row + c;
                    ref var cell = ref Unsafe.Add(ref origin, p);
                    long up = Unsafe.Subtract(ref cell, columns), down = Unsafe.Add(ref cell, columns), left = Unsafe.Subtract(ref cell, 1), right = Unsafe.Add(ref cell, 1);
                    var sum = up + down + left + right;
                    if (Complexity(up, down, left, right, sum) > limit)
                    {
                        continue;
                    }

                    long x = cell;
                    var mirrored = sum >= 0;
                    var prediction = mirrored ? (-4 - sum) >> 2 : sum >> 2;
                    var xm = mirrored ? ~x : x;
                    var e = xm - prediction;
                    var y = xm;
                    if (e < 0)
                    {
                        if (xm < lowBoundary)
                        {
                            y = lowBoundary;
                        }
                    }
                    else if (xm > highBoundary)
                    {
                        y = highBoundary;
                    }

                    if (y == lowBoundary)
                    {
                        queue.Enqueue((uint)(lowBoundary - xm), symbolBits);
                    }
                    else if (y == highBoundary)
                    {
                        queue.Enqueue((uint)(xm - highBoundary), symbolBits);
                    }

                    e = y - prediction;
                    var expanded = e >= delta ? e + delta : e < -delta ? e - delta : 2 * e + queue.Dequeue();
                    var marked = prediction + expanded;
                    var value = (int)(mirrored ? ~marked : marked);
                    if (value != x)
                    {
                        distortion.Add(value - x);
                        undo?.Add((p, (int)x));
                        cell = value;
                    }
                }
            }
        }

        if (!queue.IsEmpty)
        {
            throw new InvalidOperationException("the pass ran out of pixels before its bits: the capacity plan is wrong");
        }

        return queue.Dequeued;
    }

    private static bool ExtractPass(FrameBuffer frame, int pass, int k, int t, Span<byte> bits, List<int> boundary)
    {
        ref var origin = ref MemoryMarshal.GetArrayDataReference(frame.Values);
        int rows = frame.Rows, columns = frame.Columns, plane = frame.PlaneLength;
        long lo = frame.Min, hi = frame.Max;
        long delta = Deltas[k], lowBoundary = lo + delta, highBoundary = hi - delta;
        var limit = ComplexityLimit(t);
        var got = 0;
        for (var channel = 0; channel < frame.Channels; channel++)
        {
            for (var r = 2; r <= rows - 3; r++)
            {
                var row = channel * plane + r * columns;
                for (var c = 1 + ((r + 1 + pass) & 1); c <= columns - 2; c += 2)
                {
                    if (got == bits.Length)
                    {
                        return true;
                    }

                    var p = row + c;
                    ref var cell = ref Unsafe.Add(ref origin, p);
                    long up = Unsafe.Subtract(ref cell, columns), down = Unsafe.Add(ref cell, columns), left = Unsafe.Subtract(ref cell, 1), right = Unsafe.Add(ref cell, 1);
                    var sum = up + down + left + right;
                    if (Complexity(up, down, left, right, sum) > limit)
                    {
                        continue;
                    }

                    long x = cell;
                    var mirrored = sum >= 0;
                    var prediction = mirrored ? (-4 - sum) >> 2 : sum >> 2;
                    var expanded = (mirrored ? ~x : x) - prediction;
                    long e;
                    if (expanded >= 2 * delta)
                    {
                        e = expanded - delta;
                    }
                    else if (expanded < -2 * delta)
                    {
                        e = expanded + delta;
                    }
                    else
                    {
                        bits[got++] = (byte)(expanded & 1);
                        e = expanded >> 1;
                    }

                    var y = prediction + e;
                    if (y < lo || y > hi)
                    {
                        return false;
                    }

                    if (y == lowBoundary || y == highBoundary)
                    {
                        boundary.Add((p << 1) | (mirrored ? 1 : 0));
                    }

                    cell = (int)(mirrored ? ~y : y);
                }
            }
        }

        return got == bits.Length;
    }

    private static bool ApplyLocationMap(FrameBuffer frame, int k, List<int> boundary, ReadOnlySpan<byte> map)
    {
        long delta = Deltas[k], lowBoundary = frame.Min + delta, highBoundary = frame.Max - delta;
        var symbolBits = SymbolBits(k);
        for (var i = 0; i < boundary.Count; i++)
        {
            var p = boundary[i] >> 1;
            var mirrored = (boundary[i] & 1) == 1;
            var distance = ReadBits(map, i * symbolBits, symbolBits);
            if (distance > delta)
            {
                return false;
            }

            long y = mirrored ? ~frame.Values[p] : frame.Values[p];
            var x = y == lowBoundary ? lowBoundary - distance : highBoundary + distance;
            frame.Values[p] = (int)(mirrored ? ~x : x);
        }

        return true;
    }

    private static void WriteHeader(FrameBuffer frame, int[] reserved, WatermarkKeystream keystream, int k, int t, int count, ref Distortion distortion)
    {
        Span<byte> header = stackalloc byte[HeaderBits];
        var at = WriteBits(header, 0, MagicAndVersion, 8);
        at = WriteBits(header, at, (uint)k, 8);
        at = WriteBits(header, at, (uint)t, 16);
        WriteBits(header, at, (uint)count, CountBits);
        keystream.Apply(HeaderPart, header);
        for (var i = 0; i < HeaderBits; i++)
        {
            var old = frame.Values[reserved[i]];
            var value = (old & ~1) | header[i];
            if (value != old)
            {
                distortion.Add(value - old);
                frame.Values[reserved[i]] = value;
            }
        }
    }

    /// <summary>The smallest Δ index with Δ ≥ a (K when none).</summary>
    private static int Bucket(long a) => a < TableSize ? BucketTable[a] : BucketSearch(a);

    /// <summary>The Δ index with Δ = a (K when no Δ equals a).</summary>
    private static int Exact(long a)
    {
        if (a < TableSize)
        {
            return ExactTable[a];
        }

        var k = BucketSearch(a);
        return k < K && Deltas[k] == a ? k : K;
    }

    private static int BucketSearch(long a)
    {
        if (a > Deltas[^1])
        {
            return K;
        }

        var index = Array.BinarySearch(Deltas, (int)a);
        return index >= 0 ? index : ~index;
    }

    private static int[] BuildDeltas()
    {
        var deltas = new List<int> { 1 };
        for (var power = 2L; power <= 1 << 30; power *= 2)
        {
            deltas.Add((int)power);
            deltas.Add((int)(power * 3 / 2));
        }

        return [.. deltas.Where(d => d <= 3 << 29)];
    }

    private static byte[] BuildBucketTable()
    {
        var table = new byte[TableSize];
        for (var a = 0; a < table.Length; a++)
        {
            table[a] = (byte)BucketSearch(a);
        }

        return table;
    }

    private static byte[] BuildExactTable()
    {
        var table = new byte[TableSize];
        table.AsSpan().Fill((byte)K);
        for (var k = 0; k < K && Deltas[k] < TableSize; k++)
        {
            table[Deltas[k]] = (byte)k;
        }

        return table;
    }

    private static int WriteBits(Span<byte> bits, int at, uint value, int count)
    {
        for (var i = count - 1; i >= 0; i--)
        {
            bits[at++] = (byte)((value >> i) & 1);
        }

        return at;
    }

    private static uint ReadBits(ReadOnlySpan<byte> bits, int at, int count)
    {
        uint value = 0;
        for (var i = 0; i < count; i++)
        {
            value = (value << 1) | bits[at + i];
        }

        return value;
    }

    private readonly record struct PassPlan(int K, int T, long LocationMapBound);

    private struct Distortion
    {
        public long Changed;
        public long SumSquares;
        public int MaxAbs;

        public void Add(long difference)
        {
            Changed++;
            SumSquares += difference * difference;
            MaxAbs = (int)Math.Max(MaxAbs, Math.Abs(difference));
        }
    }

    /// <summary>The bits one pass embeds, in order: its data, then location-map symbols as the pass finds them; XORed with the pass's stream as they leave.</summary>
    private sealed class BitQueue
    {
        private readonly byte[] _bits;
        private readonly byte[] _stream;
        private int _head;
        private int _tail;

        public BitQueue(int capacity, WatermarkKeystream keystream, byte part)
        {
            _bits = new byte[capacity];
            _stream = new byte[capacity];
            keystream.Bits(part, _stream);
        }

        public bool IsEmpty => _head == _tail;

        public int Dequeued => _head;

        public void Enqueue(ReadOnlySpan<byte> bits)
        {
            bits.CopyTo(_bits.AsSpan(_tail));
            _tail += bits.Length;
        }

        public void Enqueue(uint value, int count) => _tail = WriteBits(_bits, _tail, value, count);

        public int Dequeue()
        {
            var bit = _bits[_head] ^ _stream[_head];
            _head++;
            return bit;
        }
    }
}

/// <summary>What one frame carried: its frame index and the message, and how many bits the mark used in all.</summary>
internal sealed record ExtractedFrameMark(int FrameIndex, byte[] Message, int EmbeddedBits);

/// <summary>
/// How one frame was marked. <see cref="Psnr"/> is over the stored-value range (peak 2^BitsStored − 1)
/// and all samples of the frame.
/// </summary>
internal sealed record FrameEmbedReport(
    int FrameIndex,
    int MessageBits,
    int EmbeddedBits,
    int DeltaA,
    int DeltaB,
    int ThresholdA,
    int ThresholdB,
    int LocationMapBits,
    long ChangedSamples,
    int MaxAbsoluteChange,
    long SumSquaredError,
    int Samples,
    double Peak)
{
    public double MeanSquaredError => (double)SumSquaredError / Samples;

    public double Psnr => SumSquaredError == 0 ? double.PositiveInfinity : 10 * Math.Log10(Peak * Peak / MeanSquaredError);
}
