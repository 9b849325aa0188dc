using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using TrustedProxy.Crypto;
using TrustedProxy.KeyRotation;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.Testing;

namespace TrustedProxy.LoadTests;

/// <summary>
/// Key-encryption-key rotation throughput (issue 16): an index of <c>--records</c> rows as uploads
/// leave them (each with a sealed header of <c>--metadata-bytes</c>, so rows are as wide as real ones),
/// rotated from version 1 to 2 by the real <see cref="KeyRotator"/> on one thread; then, in the same
/// run and on the same rows, the peers: the same batched compare-and-set updates with new blobs made
/// in advance (SQLite alone), and the unwrap + wrap alone (the cryptography alone).
/// </summary>
internal static class RewrapBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var records = int.Parse(Value("--records") ?? "100000", CultureInfo.InvariantCulture);
        var batchSize = int.Parse(Value("--batch-size") ?? "1000", CultureInfo.InvariantCulture);
        var metadataBytes = int.Parse(Value("--metadata-bytes") ?? "2048", CultureInfo.InvariantCulture);

        // A small run first, unprinted, so that neither the rotation (measured first) nor its peers pay the JIT.
        var quiet = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            await MeasureAsync(Math.Min(records, 5_000), batchSize, metadataBytes);
        }
        finally
        {
            Console.SetOut(quiet);
        }

        return await MeasureAsync(records, batchSize, metadataBytes);
    }

    private static async Task<int> MeasureAsync(int records, int batchSize, int metadataBytes)
    {
        using var directory = new TemporaryDirectory();
        var path = Path.Combine(directory.Path, "proxy.db");
        using var ring = ProxyKeyRing.FromBytes(RandomNumberGenerator.GetBytes(32));
        var index = new RecordIndex(path);
        var seed = Stopwatch.StartNew();
        Seed(index, ring, records, metadataBytes);
        Console.WriteLine($"# Re-wrap throughput: {records} records ({metadataBytes} B sealed header each, {new FileInfo(path).Length / 1_048_576} MiB index), batches of {batchSize}, " +
            $"one thread, {Environment.ProcessorCount} cores; seeded in {seed.Elapsed.TotalSeconds:F1} s");

        // The rows in the page cache for every contender alike (the seeding wrote them; this reads them once).
        using (var warm = index.Open())
        {
            warm.CreateCommand().Also(c => c.CommandText = "SELECT SUM(length(wrapped_key)) FROM record_keys").ExecuteScalar();
        }

        var rotator = new KeyRotator(index, ring.KeyEncryptionKeys, new KeyRotationOptions { BatchSize = batchSize, AuditEvery = long.MaxValue }, TimeProvider.System);
        var result = await rotator.RunAsync(_ => Task.CompletedTask);
        if (!result.Complete || result.Rewrapped != records)
        {
            Console.Error.WriteLine($"rotation incomplete: {result.Rewrapped} re-wrapped, {result.Remaining} left");
            return 1;
        }

        var (sqlWall, sqlCpu) = RawUpdates(index, batchSize);
        var (cryptoWall, cryptoCpu) = CryptoOnly(ring, records);

        Console.WriteLine();
        Console.WriteLine("| work on the same rows | wall | records/s (wall) | CPU | records per CPU-second |");
        Console.WriteLine("|---|---|---|---|---|");
        Row("**`tproxy keys rotate` (KeyRotator: read, unwrap, wrap, CAS update, durable cursor)**", records, result.Elapsed, result.ProcessorTime);
        Row("SQLite alone: the same batched CAS updates, blobs made in advance", records, sqlWall, sqlCpu);
        Row("AES-256-GCM alone: unwrap + wrap of each data key, no index", records, cryptoWall, cryptoCpu);
        Console.WriteLine();
        Console.WriteLine($"rotation / SQLite alone: {sqlWall / result.Elapsed:F2} of its wall-clock rate; " +
            $"10 million records at this rate: {10_000_000 / (records / result.Elapsed.TotalSeconds) / 60:F1} min");
        return 0;
    }

    private static void Row(string name, int records, TimeSpan wall, TimeSpan cpu) =>
        Console.WriteLine($"| {name} | {wall.TotalSeconds:F2} s | {records / wall.TotalSeconds:F0} | {cpu.TotalSeconds:F2} s | {records / cpu.TotalSeconds:F0} |");

    private static void Seed(RecordIndex index, ProxyKeyRing ring, int records, int metadataBytes)
    {
        using var connection = index.Open();
        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText =
            """
            INSERT INTO records (handle, object_name, patient_pseudonym, study_instance_uid, series_instance_uid, sop_instance_uid,
                sop_class_uid, modality, study_date, transfer_syntax_uid, plaintext_length, stored_length, content_sha256, origin_organisation,
                state, created_at, sealed_metadata)
            VALUES ($handle, $object, $patient, $study, $series, $sop, '1.2.840.10008.5.1.4.1.1.2', 'CT', '2026-01-01',
                '1.2.840.10008.1.2.1', 524288, 524416, $sha, 'Haukeland', 'Stored', '2026-01-01T00:00:00.0000000Z', $metadata);
            INSERT INTO record_keys (handle, wrapped_key, key_version) VALUES ($handle, $wrapped, 1);
            """;
        var parameters = new[] { "$handle", "$object", "$wrapped", "$patient", "$study", "$series", "$sop", "$sha", "$metadata" }
            .ToDictionary(n => n, n => insert.Parameters.Add(n, SqliteType.Blob));
        parameters["$handle"].SqliteType = SqliteType.Text;
        foreach (var text in new[] { "$object", "$patient", "$study", "$series", "$sop" })
        {
            parameters[text].SqliteType = SqliteType.Text;
        }

        insert.Prepare();
        for (var i = 0; i < records; i++)
        {
            var handle = RecordHandle.New();
            using var key = DataKey.CreateRandom();
            parameters["$handle"].Value = handle;
            parameters["$object"].Value = ObjectName.NewRandom().ToString();
            parameters["$wrapped"].Value = ring.KeyEncryptionKeys.Wrap(key, handle, 1);
            parameters["$patient"].Value = $"p{i / 500}";
            parameters["$study"].Value = $"1.2.826.0.1.3680043.10.{i / 500}";
            parameters["$series"].Value = $"1.2.826.0.1.3680043.10.{i / 500}.{i / 100}";
            parameters["$sop"].Value = $"1.2.826.0.1.3680043.10.{i / 500}.{i / 100}.{i}";
            parameters["$sha"].Value = RandomNumberGenerator.GetBytes(32);
            parameters["$metadata"].Value = RandomNumberGenerator.GetBytes(metadataBytes);
            insert.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    // The rotation's SQL on the same rows (cursor read, one IMMEDIATE transaction per batch, CAS
    // update by handle, cursor row), with the new blobs already made: what SQLite alone costs.
    private static (TimeSpan Wall, TimeSpan Cpu) RawUpdates(RecordIndex index, int batchSize)
    {
        using var connection = index.Open();
        connection.CreateCommand().Also(c => c.CommandText = "PRAGMA synchronous = NORMAL").ExecuteNonQuery();
        connection.CreateCommand().Also(c => c.CommandText = "INSERT INTO key_rotations (target_version, cursor, started_at) VALUES (0, '', '')").ExecuteNonQuery();
        var replacements = new Queue<byte[]>();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var cursor = "";
        while (true)
        {
            var batch = new List<(string Handle, byte[] Wrapped)>(batchSize);
            using (var read = connection.CreateCommand())
            {
                read.CommandText = "SELECT handle, wrapped_key FROM record_keys WHERE handle > $cursor AND +key_version < 3 ORDER BY handle LIMIT $limit";
                read.Parameters.AddWithValue("$cursor", cursor);
                read.Parameters.AddWithValue("$limit", batchSize);
                using var reader = read.ExecuteReader();
                while (reader.Read())
                {
                    batch.Add((reader.GetString(0), (byte[])reader.GetValue(1)));
                }
            }

            if (batch.Count == 0)
            {
                break;
            }

            // Made outside the timed SQL share as far as possible: the copy is what the crypto would hand over.
            var fresh = batch.Select(r => { var b = (byte[])r.Wrapped.Clone(); b[^1] ^= 1; return b; }).ToList();
            using var transaction = connection.BeginTransaction(deferred: false);
            using var update = connection.CreateCommand();
            update.Transaction = transaction;
            update.CommandText = "UPDATE record_keys SET wrapped_key = $new, key_version = 2 WHERE handle = $handle AND wrapped_key = $old";
            var newKey = update.Parameters.Add("$new", SqliteType.Blob);
            var oldKey = update.Parameters.Add("$old", SqliteType.Blob);
            var handle = update.Parameters.Add("$handle", SqliteType.Text);
            update.Prepare();
            for (var i = 0; i < batch.Count; i++)
            {
                newKey.Value = fresh[i];
                oldKey.Value = batch[i].Wrapped;
                handle.Value = batch[i].Handle;
                if (update.ExecuteNonQuery() != 1)
                {
                    throw new InvalidOperationException("a row changed under the benchmark");
                }
            }

            using var progress = connection.CreateCommand();
            progress.Transaction = transaction;
            progress.CommandText = "UPDATE key_rotations SET cursor = $cursor, rewrapped = rewrapped + $n WHERE target_version = 0";
            progress.Parameters.AddWithValue("$cursor", batch[^1].Handle);
            progress.Parameters.AddWithValue("$n", batch.Count);
            progress.ExecuteNonQuery();
            transaction.Commit();
            cursor = batch[^1].Handle;
        }

        return (wall.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
    }

    private static (TimeSpan Wall, TimeSpan Cpu) CryptoOnly(ProxyKeyRing ring, int records)
    {
        var handles = Enumerable.Range(0, records).Select(_ => RecordHandle.New()).ToArray();
        var wrapped = handles.Select(h => { using var k = DataKey.CreateRandom(); return ring.KeyEncryptionKeys.Wrap(k, h, 2); }).ToArray();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        for (var i = 0; i < records; i++)
        {
            using var key = ring.KeyEncryptionKeys.Unwrap(wrapped[i], handles[i]);
            wrapped[i] = ring.KeyEncryptionKeys.Wrap(key, handles[i], 3);
        }

        return (wall.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
    }

    private static T Also<T>(this T value, Action<T> change)
    {
        change(value);
        return value;
    }
}
