using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using TrustedProxy.Crypto;

namespace TrustedProxy.Audit;

/// <summary>How far one witness has got: what it holds, what waits, why the last push failed.</summary>
/// <param name="Name">"directory" or "http".</param>
/// <param name="Location">Its path or URL.</param>
/// <param name="WitnessedSize">Entries covered by the latest checkpoint it holds (from the durable marker), 0 for none.</param>
/// <param name="Pending">Checkpoints in the log it does not hold yet.</param>
/// <param name="ConsecutiveFailures">Failed pushes since the last success.</param>
/// <param name="LastError">Why the last push failed, while failing.</param>
/// <param name="LastSuccess">When a push last succeeded in this process.</param>
/// <param name="NextAttempt">While failing, when the next attempt is due.</param>
public sealed record AuditWitnessStatus(string Name, string Location, long WitnessedSize, int Pending, int ConsecutiveFailures, string? LastError, DateTimeOffset? LastSuccess, DateTimeOffset? NextAttempt)
{
    public bool Failing => ConsecutiveFailures > 0;
}

/// <summary>
/// Pushes every checkpoint of the audit log to each configured witness, in order, in the
/// background (docs/audit-log.md, "Witness"). Nothing here ever holds up an append or a request:
/// the log only queues each checkpoint as it becomes durable. For each witness a marker file beside
/// the log (<c>witness-&lt;name&gt;.pushed</c>) records, durably, the size of the last checkpoint it
/// acknowledged; at start the log is read for every checkpoint after it, so a crash, a restart or a
/// long outage loses nothing. A failed push is retried with exponential backoff (on the injected
/// clock); while failing, the witness shows in /healthz and in the metrics, and each failure is logged.
/// </summary>
internal sealed partial class AuditWitnessPublisher : IAsyncDisposable
{
    private readonly AuditLog _log;
    private readonly AuditWitnessOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<Target> _targets;
    private readonly SortedList<long, AuditCheckpoint> _pending = [];
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Meter _meter = new("TrustedProxy.Audit.Witness");
    private readonly Counter<long> _failures;
    private readonly Counter<long> _pushed;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _running = Task.CompletedTask;
    private int _disposed;

    public AuditWitnessPublisher(AuditLog log, IReadOnlyList<IAuditWitness> witnesses, AuditWitnessOptions options, TimeProvider time, ILogger logger)
    {
        _log = log;
        _options = options;
        _time = time;
        _logger = logger;
        _targets = [.. witnesses.Select(w => new Target(w, MarkerPath(log.Paths, w.Name)))];
        var duplicate = _targets.GroupBy(t => t.Witness.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"two audit witnesses named '{duplicate.Key}'");
        }

        _failures = _meter.CreateCounter<long>("trustedproxy.audit.witness.failures", "{attempt}", "Pushes of an audit checkpoint to a witness that failed (retried); alert when it keeps rising");
        _pushed = _meter.CreateCounter<long>("trustedproxy.audit.witness.pushed", "{checkpoint}", "Audit checkpoints a witness acknowledged");
        _meter.CreateObservableGauge("trustedproxy.audit.witness.pending", () => Statuses.Select(s => new Measurement<int>(s.Pending, new KeyValuePair<string, object?>("witness", s.Name))),
            "{checkpoint}", "Audit checkpoints not yet held by a witness: above 0 for long, the witness is unreachable and history since its last checkpoint is not yet protected");
    }

    public IReadOnlyList<AuditWitnessStatus> Statuses
    {
        get
        {
            lock (_gate)
            {
                return [.. _targets.Select(t => new AuditWitnessStatus(t.Witness.Name, t.Witness.Location, t.Witnessed,
                    _pending.Keys.Count(size => size > t.Witnessed), t.Failures, t.LastError, t.LastSuccess, t.NextAttempt))];
            }
        }
    }

    public static string MarkerPath(AuditLogPaths paths, string witness) => Path.Combine(paths.Directory, $"witness-{witness}.pushed");

    /// <summary>In the background (a long log takes a while to read): reads the markers and the log's checkpoints after them, then pushes.</summary>
    public void Start()
    {
        if (_targets.Count == 0)
        {
            return;
        }

        // Subscribed before the log is read, so that no checkpoint falls between the two (one seen twice is pushed once).
        _log.Checkpointed += Enqueue;
        _running = Task.Run(async () =>
        {
            try
            {
                CatchUp();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                // The log opened and verified, so this is rare (the file made unreadable since); new
                // checkpoints are still pushed, and the next start reads the log again from the markers.
                LogCatchUpFailed(_logger, ex.Message);
            }

            await Task.WhenAll(_targets.Select(t => Task.Run(() => RunAsync(t, _stopping.Token)))).ConfigureAwait(false);
        });
    }

    // A marker counts only if the log holds the very checkpoint it names: after a recovery from a
    // backup (or a log replaced) it may name one the log no longer has, and trusting it would skip
    // the restored log's next checkpoints for good. Such a witness gets everything again.
    private void CatchUp()
    {
        var all = CheckpointsIn(_log.Paths, _log.Options.MaxEntryBytes, after: 0).ToList();
        foreach (var target in _targets)
        {
            if (ReadMarker(target.Marker) is not var (size, root))
            {
                continue;
            }

            if (all.Any(c => c.Size == size && c.Root == root))
            {
                lock (_gate)
                {
                    target.Witnessed = size;
                }
            }
            else
            {
                LogMarkerNotInLog(_logger, target.Witness.Name, size);
            }
        }

        foreach (var checkpoint in all)
        {
            Enqueue(checkpoint);
        }
    }

    /// <summary>Completes once every witness holds a checkpoint covering at least <paramref name="size"/> entries.</summary>
    public async Task WaitForWitnessedAsync(long size, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_targets.All(t => t.Witnessed >= size))
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Completes at the next change of any witness's status (a push done, a failure and its retry scheduled).</summary>
    public Task NextChangeAsync()
    {
        lock (_gate)
        {
            return _changed.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Once by the hosted service at stop, again by the container: the second does nothing.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _log.Checkpointed -= Enqueue;
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _running.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
        _meter.Dispose();
    }

    /// <summary>The checkpoints recorded in a log, in order, after the first <paramref name="after"/> entries.</summary>
    internal static IEnumerable<AuditCheckpoint> CheckpointsIn(AuditLogPaths paths, int maxEntryBytes, long after)
    {
        if (!File.Exists(paths.Log))
        {
            yield break;
        }

        using var stream = AuditVerifier.OpenShared(paths.Log);
        var kind = "\"kind\":\"checkpoint\""u8.ToArray();
        foreach (var line in AuditLogLines.Read(stream, 0, stream.Length, maxEntryBytes))
        {
            if (!line.Complete || line.TooLong || line.Bytes.Span.IndexOf(kind) < 0)
            {
                continue;
            }

            var (entry, _) = AuditLine.Parse(line.Bytes.Span);
            if (entry.Kind == AuditKinds.Checkpoint && entry.Data["size"]!.GetValue<long>() > after)
            {
                yield return new AuditCheckpoint(entry.Data["keyId"]!.GetValue<string>(), entry.Data["size"]!.GetValue<long>(),
                    entry.Data["root"]!.GetValue<string>(), entry.Time, entry.Data["signature"]!.GetValue<string>());
            }
        }
    }

    private void Enqueue(AuditCheckpoint checkpoint)
    {
        lock (_gate)
        {
            if (_targets.All(t => t.Witnessed >= checkpoint.Size))
            {
                return;
            }

            _pending.TryAdd(checkpoint.Size, checkpoint);
        }

        foreach (var target in _targets)
        {
            target.Wake.Release();
        }
    }

    private async Task RunAsync(Target target, CancellationToken stopping)
    {
        var backoff = TimeSpan.FromSeconds(_options.RetryInitialSeconds);
        while (!stopping.IsCancellationRequested)
        {
            AuditCheckpoint? next;
            lock (_gate)
            {
                next = _pending.Values.FirstOrDefault(c => c.Size > target.Witnessed);
            }

            if (next is null)
            {
                await target.Wake.WaitAsync(stopping).ConfigureAwait(false);
                continue;
            }

            try
            {
                await target.Witness.SubmitAsync(next, stopping).ConfigureAwait(false);
                WriteMarker(target.Marker, next);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                _failures.Add(1, new KeyValuePair<string, object?>("witness", target.Witness.Name));
                LogPushFailed(_logger, target.Witness.Name, target.Witness.Location, next.Size, backoff.TotalSeconds, ex.Message);

                // The delay exists before the status says a retry is due, so that whoever reacts to the
                // status (a test advancing a fake clock) moves a timer that is already there.
                var delay = Task.Delay(backoff, _time, stopping);
                Changed(() =>
                {
                    target.Failures++;
                    target.LastError = ex.Message;
                    target.NextAttempt = _time.GetUtcNow() + backoff;
                });
                await delay.ConfigureAwait(false);
                backoff = TimeSpan.FromSeconds(Math.Min(backoff.TotalSeconds * 2, _options.RetryMaxSeconds));
                continue;
            }

            if (target.Failures > 0)
            {
                LogWitnessBack(_logger, target.Witness.Name, target.Witness.Location, target.Failures);
            }

            backoff = TimeSpan.FromSeconds(_options.RetryInitialSeconds);
            _pushed.Add(1, new KeyValuePair<string, object?>("witness", target.Witness.Name));
            LogWitnessed(_logger, target.Witness.Name, next.Size);
            Changed(() =>
            {
                target.Witnessed = next.Size;
                target.Failures = 0;
                target.LastError = null;
                target.NextAttempt = null;
                target.LastSuccess = _time.GetUtcNow();
                var done = _targets.Min(t => t.Witnessed);
                while (_pending.Count > 0 && _pending.Keys[0] <= done)
                {
                    _pending.RemoveAt(0);
                }
            });
        }
    }

    private void Changed(Action change)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            change();
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    private static (long Size, string Root)? ReadMarker(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var parts = File.ReadAllText(path).Trim().Split(' ');
        return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? (size, parts[1]) : null;
    }

    // "<size> <root>\n", replaced atomically and fsync'd: a marker ahead of what the witness holds
    // would skip a checkpoint for good, so it is written only after the witness acknowledged.
    private static void WriteMarker(string path, AuditCheckpoint checkpoint) =>
        SecretFile.WriteText(path, string.Create(CultureInfo.InvariantCulture, $"{checkpoint.Size} {checkpoint.Root}\n"));

    [LoggerMessage(EventId = 5010, Level = LogLevel.Warning, Message = "Audit witness {Witness} ({Location}) did not take the checkpoint of {Size} entries; retrying in {Seconds} s (appends and requests go on): {Reason}")]
    private static partial void LogPushFailed(ILogger logger, string witness, string location, long size, double seconds, string reason);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Error, Message = "The audit log could not be read for the checkpoints the witnesses lack; only new checkpoints are pushed until the next start: {Reason}")]
    private static partial void LogCatchUpFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Debug, Message = "Audit witness {Witness} holds the checkpoint of {Size} entries")]
    private static partial void LogWitnessed(ILogger logger, string witness, long size);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Warning, Message = "Audit witness {Witness}: its marker names a checkpoint of {Size} entries that the log does not hold (restored from a backup, or replaced); every checkpoint of the log is pushed to it again, and verification against it will show the difference")]
    private static partial void LogMarkerNotInLog(ILogger logger, string witness, long size);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "Audit witness {Witness} ({Location}) takes checkpoints again after {Failures} failed attempt(s)")]
    private static partial void LogWitnessBack(ILogger logger, string witness, string location, int failures);

    private sealed class Target(IAuditWitness witness, string marker)
    {
        public IAuditWitness Witness { get; } = witness;

        public string Marker { get; } = marker;

        public SemaphoreSlim Wake { get; } = new(0);

        public long Witnessed { get; set; }

        public int Failures { get; set; }

        public string? LastError { get; set; }

        public DateTimeOffset? LastSuccess { get; set; }

        public DateTimeOffset? NextAttempt { get; set; }
    }
}
