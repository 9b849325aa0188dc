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

    /// <summary>End to end over mutual TLS on the filesystem backend: a plain read against 1-of-N transfers, in one run.</summary>
    public static async Task<int> RunEndToEndAsync(int recordBytes, int iterations)
    {
        await using var proxy = await ProxyHost.StartAsync();
        var producer = proxy.Client(ProxyRole.Producer);
        var consumer = proxy.Client(ProxyRole.Consumer);
        var handles = new List<string>();
        for (var i = 0; i < 64; i++)
        {
            var file = new DicomFileBuilder().Patient($"OTE2E{i}", "Bench^Ot").PixelData(Math.Max(0, recordBytes - 400), seed: i).Build();
            handles.Add((await producer.UploadAsync(new MemoryStream(file))).Handle);
        }

        Console.WriteLine($"# retrieval latency, records of {recordBytes / 1024} KiB, filesystem backend, mutual TLS, {iterations} runs after 2 warm-up");
        Console.WriteLine();
        Console.WriteLine("| retrieval | p50 | p99 |");
        Console.WriteLine("|---|---|---|");
        var plain = await TimeAsync(iterations, i => consumer.FetchAsync(handles[i % handles.Count], Stream.Null));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| plain read | {Percentile(plain, 50):F1} ms | {Percentile(plain, 99):F1} ms |"));
        foreach (var (n, k) in new[] { (2, 1), (8, 1), (8, 4), (64, 1), (64, 4) })
        {
            var set = handles.Take(n).ToList();
            var times = await TimeAsync(iterations, i => consumer.FetchObliviousAsync(set, set.Skip(i % n).Concat(set).Take(k).ToList()));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| oblivious transfer, {k} of {n} | {Percentile(times, 50):F1} ms | {Percentile(times, 99):F1} ms |"));
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
