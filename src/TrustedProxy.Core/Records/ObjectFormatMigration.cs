using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Records;

/// <summary>The stored object format and its migration. Section TrustedProxy:ObjectFormat.</summary>
public sealed record ObjectFormatOptions
{
    /// <summary>
    /// At most this many records an hour are read and moved to the masked format by
    /// <c>tproxy records migrate-format</c>. Each one becomes new blocks waiting in the upload cache
    /// (held like any relocated copy), so the pace bounds the cache's backlog and keeps the write
    /// schedule's real blocks from crowding out everything else.
    /// </summary>
    [Range(0.01, 1_000_000)]
    public double MigrationRecordsPerHour { get; init; } = 60;
}

/// <summary>Where the migration stands: legacy records left (from the index), and this run's counts.</summary>
internal sealed record ObjectFormatMigrationStatus(
    bool Running, long LegacyRecords, long Migrated, long Failed, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, double RecordsPerHour);

/// <summary>
/// Moves records stored before index v7 (real blocks without the object mask) to the current
/// format: one record at a time, at a configured pace, read through the ordinary read path
/// (<see cref="RecordReader"/>: group reads in the read schedule, the whole ciphertext verified)
/// and relocated (<see cref="RecordRelocator"/>), whose new blocks leave through the upload
/// schedule, masked. There is no migration state to lose: the queue is the index's own answer to
/// "records with unmasked real blocks", and a record is done exactly when its relocation commits.
/// A run starts when an administrator asks and ends when the queue is empty; a record that fails is
/// left for the next run.
/// </summary>
internal sealed partial class ObjectFormatMigration(
    RecordIndex index, BlockIndex blocks, RecordReader reader, RecordRelocator relocator, AuditLog audit,
    IOptions<ObjectFormatOptions> options, TimeProvider time, ILogger<ObjectFormatMigration> logger)
{
    private readonly Lock _gate = new();
    private readonly HashSet<string> _failed = [];
    private TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _running;
    private bool _requested;
    private long _migrated;
    private DateTimeOffset? _startedAt;
    private DateTimeOffset? _finishedAt;

    /// <summary>Relocation needs the upload cache: without it there is no schedule to move records through.</summary>
    public bool Available => relocator.CanRelocate;

    private TimeSpan Interval => TimeSpan.FromHours(1 / options.Value.MigrationRecordsPerHour);

    public async Task<ObjectFormatMigrationStatus> StatusAsync()
    {
        var left = await blocks.LegacyRecordCountAsync().ConfigureAwait(false);
        lock (_gate)
        {
            return new ObjectFormatMigrationStatus(_running, left, _migrated, _failed.Count, _startedAt, _finishedAt, options.Value.MigrationRecordsPerHour);
        }
    }

    /// <summary>Starts a run, or lets the running one go on; recorded in the audit log first (fails closed).</summary>
    public async Task<ObjectFormatMigrationStatus> StartAsync()
    {
        if (!Available)
        {
            throw new InvalidOperationException("the object-format migration needs the upload cache");
        }

        var left = await blocks.LegacyRecordCountAsync().ConfigureAwait(false);
        await audit.AppendAsync(AuditEvents.ObjectFormatMigrationStart(left, options.Value.MigrationRecordsPerHour)).ConfigureAwait(false);
        lock (_gate)
        {
            // Asked again while a run ends: it looks once more before it stops.
            _requested = true;
            if (!_running)
            {
                _running = true;
                _migrated = 0;
                _failed.Clear();
                _startedAt = time.GetUtcNow();
                _finishedAt = null;
                _started.TrySetResult();
            }
        }

        LogStarted(logger, left, options.Value.MigrationRecordsPerHour);
        return await StatusAsync().ConfigureAwait(false);
    }

    /// <summary>The migration loop, for the life of the server: idle until a run is started.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Task started;
                lock (_gate)
                {
                    started = _started.Task;
                    _requested = false;
                }

                await started.WaitAsync(cancellationToken).ConfigureAwait(false);
                if (await MigrateNextAsync(cancellationToken).ConfigureAwait(false))
                {
                    await Task.Delay(Interval, time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                lock (_gate)
                {
                    if (_requested)
                    {
                        continue;
                    }

                    _running = false;
                    _finishedAt = time.GetUtcNow();
                    _started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    LogFinished(logger, _migrated, _failed.Count);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Moves the next legacy record; false when none is left to try in this run.</summary>
    private async Task<bool> MigrateNextAsync(CancellationToken cancellationToken)
    {
        string[] failed;
        lock (_gate)
        {
            failed = [.. _failed];
        }

        if (await blocks.NextLegacyRecordAsync(failed).ConfigureAwait(false) is not { } handle)
        {
            return false;
        }

        try
        {
            // Deleted since the query: nothing to move.
            if (await index.FindAsync(handle).ConfigureAwait(false) is { } entry)
            {
                // The proxy decrypts a record in nobody's request: in the audit log first, like any read.
                await audit.AppendAsync(AuditEvents.ObjectFormatMigrationRecord(entry)).ConfigureAwait(false);
                await using var content = await reader.OpenAndRelocateAsync(entry, cancellationToken).ConfigureAwait(false);
            }

            // A relocation declined (the record changed under it) must not make the loop spin on it.
            if ((await blocks.OfRecordAsync(handle).ConfigureAwait(false)).Any(b => !b.Masked))
            {
                throw new InvalidOperationException("the record was not relocated");
            }

            lock (_gate)
            {
                _migrated++;
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            lock (_gate)
            {
                _failed.Add(handle);
            }

            LogRecordFailed(logger, handle, ex.GetType().Name);
        }

        return true;
    }

    [LoggerMessage(EventId = 4301, Level = LogLevel.Information, Message = "Object-format migration started: {Left} legacy record(s), at most {PerHour} an hour")]
    private static partial void LogStarted(ILogger logger, long left, double perHour);

    [LoggerMessage(EventId = 4302, Level = LogLevel.Information, Message = "Object-format migration finished: {Migrated} record(s) moved, {Failed} left for the next run")]
    private static partial void LogFinished(ILogger logger, long migrated, int failed);

    [LoggerMessage(EventId = 4303, Level = LogLevel.Warning, Message = "Record {Handle} could not be moved to the masked format ({Error}); the next run tries again")]
    private static partial void LogRecordFailed(ILogger logger, string handle, string error);
}
