using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;
using TrustedProxy.Testing;

namespace TrustedProxy.LoadTests;

/// <summary>
/// Cost of one k-out-of-N oblivious transfer: the protocol's computation on each side and the
/// bytes on the wire, with the N records (512 KiB each) sent encrypted under their message keys.
/// </summary>
internal static class ObliviousTransferBenchmark
{
    public static int Run(int recordBytes)
    {
        Console.WriteLine($"# k-out-of-N oblivious transfer (Chou-Orlandi over P-256, BouncyCastle), records of {recordBytes / 1024} KiB, {Environment.ProcessorCount} cores, one thread");
        Console.WriteLine();
        Console.WriteLine("| N | k | sender (offer + answer) | receiver (choice + open) | record encryption (sender) | OT messages on the wire | with the N records |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        var record = RandomNumberGenerator.GetBytes(recordBytes);
        foreach (var n in new[] { 2, 8, 64, 1024 })
        {
            foreach (var k in new[] { 1, 4 }.Where(k => k <= n))
            {
                var keys = Enumerable.Range(0, n).Select(_ => RandomNumberGenerator.GetBytes(OtProtocol.KeyBytes)).ToList();
                var runs = n >= 1024 ? 5 : 20;
                var sender = new List<double>();
                var receiver = new List<double>();
                long protocolBytes = 0;
                for (var run = 0; run < runs + 1; run++)
                {
                    var choices = Enumerable.Range(0, k).Select(_ => RandomNumberGenerator.GetInt32(n)).ToList();
                    var watch = Stopwatch.StartNew();
                    var ot = new OtSender(n, k);
                    var offer = ot.Offer.ToBytes();
                    var senderTime = watch.Elapsed.TotalMilliseconds;

                    watch.Restart();
                    var side = new OtReceiver(OtOffer.Parse(offer), choices);
                    var choice = side.Choice.ToBytes();
                    var receiverTime = watch.Elapsed.TotalMilliseconds;

                    watch.Restart();
                    var answer = ot.Answer(OtChoice.Parse(choice, k), keys);
                    senderTime += watch.Elapsed.TotalMilliseconds;

                    watch.Restart();
                    var opened = side.Open(answer);
                    receiverTime += watch.Elapsed.TotalMilliseconds;
                    if (!opened.Select((key, i) => key.SequenceEqual(keys[choices[i]])).All(ok => ok))
                    {
                        throw new InvalidOperationException("the transfer returned the wrong keys");
                    }

                    if (run > 0)
                    {
                        sender.Add(senderTime);
                        receiver.Add(receiverTime);
                    }

                    protocolBytes = offer.Length + choice.Length + answer.Length;
                }

                // The records themselves: each encrypted once under its message key (AES-256-GCM).
                var encrypt = Stopwatch.StartNew();
                var sealedRecord = new byte[recordBytes];
                var tag = new byte[16];
                for (var j = 0; j < n; j++)
                {
                    using var aes = new AesGcm(keys[j], 16);
                    aes.Encrypt(RandomNumberGenerator.GetBytes(12), record, sealedRecord, tag);
                }

                var encryption = encrypt.Elapsed.TotalMilliseconds;
                var withRecords = protocolBytes + (n * (recordBytes + 12L + 16));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {n} | {k} | {Median(sender):F2} ms | {Median(receiver):F2} ms | {encryption:F1} ms | {Size(protocolBytes)} | {Size(withRecords)} |"));
            }
        }

        return 0;
    }

    /// <summary>
    /// End to end over mutual TLS on the filesystem backend, in one run: a plain read (groups of one,
    /// read at once: obliviousness off), whole-group reads at once and in constant-rate slots, and
    /// 1-of-N / k-of-N transfers. Uploads are write-through, so every read goes to the backend.
    /// </summary>
    public static async Task<int> RunEndToEndAsync(int recordBytes, int iterations)
    {
        Console.WriteLine($"# retrieval latency, records of {recordBytes / 1024} KiB ({(recordBytes + (128 << 10) - 1) / (128 << 10)} blocks of 128 KiB), filesystem backend, mutual TLS, {iterations} runs after 2 warm-up");
        Console.WriteLine();
        Console.WriteLine("| retrieval | cloud reads per record | p50 | p99 |");
        Console.WriteLine("|---|---|---|---|");

        var configurations = new (string Label, int GroupSize, string Schedule, bool Ot)[]
        {
            ("plain read (N = 1, oblivious off)", 1, "immediate", false),
            ("group read, N = 8, immediate", 8, "immediate", true),
            ("group read, N = 8, constant-rate 2 groups/s (default)", 8, "constant-rate", false),
        };
        foreach (var (label, groupSize, schedule, ot) in configurations)
        {
            await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>
            {
                ["TrustedProxy:ObliviousRetrieval:GroupSize"] = groupSize.ToString(CultureInfo.InvariantCulture),
                ["TrustedProxy:ObliviousRetrieval:Schedule"] = schedule,
            });
            var producer = proxy.Client(ProxyRole.Producer);
            var consumer = proxy.Client(ProxyRole.Consumer);
            var handles = new List<string>();
            for (var i = 0; i < 64; i++)
            {
                var file = new DicomFileBuilder().Patient($"OTE2E{i}", "Bench^Ot").PixelData(Math.Max(0, recordBytes - 400), seed: i).Build();
                handles.Add((await producer.UploadAsync(new MemoryStream(file))).Handle);
            }

            var blocks = (recordBytes + (128 << 10) - 1) / (128 << 10);
            var runs = schedule == "constant-rate" ? Math.Min(iterations, 20) : iterations;
            var plain = await TimeAsync(runs, i => consumer.FetchAsync(handles[i % handles.Count], Stream.Null));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {label} | {groupSize * blocks} | {Percentile(plain, 50):F1} ms | {Percentile(plain, 99):F1} ms |"));
            if (!ot)
            {
                continue;
            }

            foreach (var (n, k) in new[] { (2, 1), (8, 1), (8, 4), (64, 1), (64, 4) })
            {
                var set = handles.Take(n).ToList();
                var times = await TimeAsync(iterations, i => consumer.FetchObliviousAsync(set, set.Skip(i % n).Concat(set).Take(k).ToList()));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| oblivious transfer, {k} of {n}, over group reads N = 8 | {groupSize * blocks * n} | {Percentile(times, 50):F1} ms | {Percentile(times, 99):F1} ms |"));
            }
        }

        return 0;
    }

    private static async Task<List<double>> TimeAsync(int iterations, Func<int, Task> action)
    {
        var times = new List<double>();
        for (var i = 0; i < iterations + 2; i++)
        {
            var watch = Stopwatch.StartNew();
            await action(i);
            if (i >= 2)
            {
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        return times;
    }

    private static double Percentile(List<double> values, double percentile)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static string Size(long bytes) => bytes >= 10 << 20 ? $"{bytes / (double)(1 << 20):F0} MiB" : bytes >= 10 << 10 ? $"{bytes / 1024.0:F1} KiB" : $"{bytes} B";
}
