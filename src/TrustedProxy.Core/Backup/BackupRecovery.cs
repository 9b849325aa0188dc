using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Data.Sqlite;
using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Backup;

/// <summary>What a recovery restored and checked.</summary>
internal sealed record RecoveryReport(long Generation, BackupManifest Manifest, int Entries, AuditVerification Audit, bool CaChecked, string DataDirectory, string CertsDirectory, IncrementReplay Increments)
{
    /// <summary>The state restored is as of this time: the last increment replayed, or the generation's snapshot.</summary>
    public DateTimeOffset BackupPoint => Increments.Last?.CreatedAt ?? Manifest.CreatedAt;

    /// <summary>Records in the restored index.</summary>
    public long Records => Increments.Last?.Records ?? Manifest.Records;

    /// <summary>Real blocks waiting in the restored index.</summary>
    public long WaitingBlocks => Increments.Last?.WaitingBlocks ?? Manifest.WaitingBlocks;
}

/// <summary>
/// Recovery from nothing but the master key and the backend: the newest complete generation is read
/// into hidden directories beside the targets, checked there (the audit chain and its checkpoint
/// under the key's audit signing key, the CA key against the CA certificate, the index's record count
/// against the manifest), given the master key file and the backup's progress (the restored proxy
/// goes on after this generation's number, never reusing a name), and only then moved into place.
/// Any failure leaves the targets as they were and removes what was written.
/// </summary>
internal sealed class BackupRecovery(IObjectStore store, ProxyKeyRing keys, int blockSize, TimeProvider time)
{
    /// <summary>The targets must be absent or empty: a recovery never mixes with or overwrites state.</summary>
    public static string? RefuseTarget(string directory, string flag) =>
        Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any()
            ? $"{flag} '{directory}' is not empty: recovery writes only into a new or empty directory"
            : File.Exists(directory) ? $"{flag} '{directory}' is a file" : null;

    /// <summary>
    /// Finds the backup that reaches furthest (null: no backup of this key in the backend): the newest
    /// complete generation, or the one before it when that one's increments reach a later point. While
    /// a new generation ships, the previous one's increments go on; once it completes its own chain
    /// starts again from its snapshot, so for a while the previous chain holds more (uploads it carried
    /// after the new snapshot). The other is kept as the fallback should the chosen one be damaged.
    /// </summary>
    public async Task<FoundGeneration?> FindAsync(CancellationToken cancellationToken)
    {
        using var backupKeys = BackupKeys.From(keys);
        var restorer = new BackupRestorer(store, backupKeys, new BackupObjectSealer(backupKeys, blockSize));
        var complete = await restorer.FindCompleteAsync(2, cancellationToken).ConfigureAwait(false);
        if (complete is not [var newest, ..])
        {
            return null;
        }

        if (complete is not [_, var previous])
        {
            return newest;
        }

        ChainReach newestReach, previousReach;
        try
        {
            previousReach = await restorer.ReachAsync(previous, cancellationToken).ConfigureAwait(false);
        }
        catch (BackupIntegrityException)
        {
            return newest;
        }

        newestReach = await restorer.ReachAsync(newest, cancellationToken).ConfigureAwait(false);
        return previousReach.BackupPoint > newestReach.BackupPoint
            ? previous with { Fallback = newest }
            : newest with { Fallback = previous };
    }

    /// <summary>Restores <paramref name="found"/>; if it turns out damaged, its fallback (the other complete generation) instead.</summary>
    public async Task<RecoveryReport> RecoverAsync(FoundGeneration found, string dataTarget, string certsTarget, CancellationToken cancellationToken)
    {
        try
        {
            return await RecoverOneAsync(found, dataTarget, certsTarget, cancellationToken).ConfigureAwait(false);
        }
        catch (BackupIntegrityException) when (found.Fallback is { } fallback)
        {
            return await RecoverOneAsync(fallback, dataTarget, certsTarget, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<RecoveryReport> RecoverOneAsync(FoundGeneration found, string dataTarget, string certsTarget, CancellationToken cancellationToken)
    {
        dataTarget = Path.GetFullPath(dataTarget);
        certsTarget = Path.GetFullPath(certsTarget);
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var dataScratch = Path.Combine(Path.GetDirectoryName(dataTarget)!, $".{Path.GetFileName(dataTarget)}.recovering-{suffix}");
        var certsScratch = Path.Combine(Path.GetDirectoryName(certsTarget)!, $".{Path.GetFileName(certsTarget)}.recovering-{suffix}");
        var work = dataScratch + ".work";
        try
        {
            using var backupKeys = BackupKeys.From(keys);
            var restorer = new BackupRestorer(store, backupKeys, new BackupObjectSealer(backupKeys, blockSize));
            var entries = await restorer.RestoreAsync(found, dataScratch, certsScratch, work, cancellationToken).ConfigureAwait(false);
            var increments = await restorer.ReplayIncrementsAsync(found, dataScratch, certsScratch, Path.Combine(work, "increments"), cancellationToken).ConfigureAwait(false);
            var expectedRecords = increments.Last?.Records ?? found.Manifest.Records;

            var auditPaths = new AuditLogPaths(Path.Combine(dataScratch, "audit"));
            var audit = AuditLog.VerifyDirectory(auditPaths, AuditKeyStore.LocalTrust(auditPaths, keys), external: [], new AuditLogOptions());
            if (!audit.Intact)
            {
                throw new BackupIntegrityException($"the restored {audit.Summary}");
            }

            var caChecked = CheckCertificateAuthority(new CertificateAuthorityPaths(certsScratch), keys);
            var records = CountRecords(Path.Combine(dataScratch, "proxy.db"));
            if (records != expectedRecords)
            {
                throw new BackupIntegrityException($"the restored index holds {records} records, the {(increments.Last is null ? "manifest" : "last increment's commit")} says {expectedRecords}");
            }

            var master = keys.ExportMasterKey();
            try
            {
                SecretFile.EnsurePrivateDirectory(Path.Combine(dataScratch, "keys"));
                ProxyKeyRing.WriteKeyFile(Path.Combine(dataScratch, "keys", "master.key"), master);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(master);
            }

            var now = time.GetUtcNow();
            // No increment is ever appended to the restored generation again (names past a gap may be
            // taken): the chain is closed, and a new generation is due at once.
            var closed = new IncrementChain(found.Generation, [], 0, BackupKeys.MaxIncrements, null, null, Broken: true);
            new BackupState(Math.Max(found.Generation, found.Newest) + 1, null, new CompleteGeneration(found.Generation, found.Manifest.CreatedAt, now), now, closed).Write(Path.Combine(dataScratch, "backup"));

            // Both or neither: a failure to place the certificates takes the data directory back.
            MoveInto(dataScratch, dataTarget);
            try
            {
                MoveInto(certsScratch, certsTarget);
            }
            catch
            {
                Directory.Move(dataTarget, dataScratch);
                throw;
            }

            return new RecoveryReport(found.Generation, found.Manifest, entries.Count, audit, caChecked, dataTarget, certsTarget, increments);
        }
        finally
        {
            foreach (var directory in new[] { dataScratch, certsScratch, work })
            {
                if (Directory.Exists(directory))
                {
                    Directory.Delete(directory, recursive: true);
                }
            }
        }
    }

    // The CA key is restored encrypted as it was; its passphrase is derived from the master key being
    // recovered with (or, for a CA made before that, its passphrase file came with it, or the operator
    // sets the environment's). The key must decrypt and be the CA certificate's own.
    private static bool CheckCertificateAuthority(CertificateAuthorityPaths paths, ProxyKeyRing keys)
    {
        if (!paths.CaExists)
        {
            throw new BackupIntegrityException("the restored certificates directory has no CA");
        }

        var passphrase = CaPassphrase.Resolve(paths, keys: keys)!;
        using var key = ECDsa.Create();
        try
        {
            key.ImportFromEncryptedPem(SecretFile.ReadText(paths.IssuingPrivateKey), passphrase);
        }
        catch (CryptographicException)
        {
            throw new BackupIntegrityException($"the restored CA key does not decrypt with its passphrase (derived from the master key, its restored key file, or {CaPassphrase.EnvironmentVariable})");
        }

        // The issuing key's certificate: the intermediate's with an offline root (whose key is not in the backup), else the root's.
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(paths.IssuingCertificate));
        using var published = certificate.GetECDsaPublicKey() ?? throw new BackupIntegrityException("the restored CA certificate has no ECDSA key");
        if (!published.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
        {
            throw new BackupIntegrityException("the restored CA key is not the CA certificate's key");
        }

        return true;
    }

    private static long CountRecords(string database)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM records";
        return (long)command.ExecuteScalar()!;
    }

    private static void MoveInto(string scratch, string target)
    {
        if (Directory.Exists(target))
        {
            Directory.Delete(target); // empty, checked before
        }

        Directory.Move(scratch, target);
    }
}
