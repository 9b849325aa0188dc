using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using TrustedProxy.Audit;

using TrustedProxy.Telemetry;

namespace TrustedProxy.Policy;

/// <summary>A change to the policy files that was refused, and why; the version before it stayed in force.</summary>
public sealed record PolicyRejection(DateTimeOffset At, IReadOnlyList<PolicyError> Errors);

/// <summary>
/// The policy set in force, and its replacement when the files change. The set is read from the
/// directory at start-up (invalid: the proxy does not start) and again after every change once the
/// directory has been quiet for the debounce time. A valid change is put in force at once, whole,
/// and recorded in the history; an invalid one is refused with its file:line:column, logged, kept as
/// <see cref="LastRejection"/>, and the version before it stays in force. A new version is put in
/// the tamper-evident audit log (its hash, its files' digests, the version it replaces) before it
/// is put in force; if that cannot be written, the change is refused like an invalid one. Decisions read
/// <see cref="Current"/> once each, so every decision is taken under one version.
/// </summary>
internal sealed partial class PolicyStore : IDisposable
{
    private readonly PolicyOptions _options;
    private readonly IReadOnlySet<string>? _profiles;
    private readonly PolicyHistory _history;
    private readonly AuditLog _audit;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _reloading = new(1, 1);
    private readonly Lock _watchGate = new();
    private volatile InForce _current;
    private volatile PolicyRejection? _lastRejection;
    private FileSystemWatcher? _watcher;
    private ITimer? _debounce;
    private CancellationTokenSource _reloaded = new();

    // initial: the set read at start-up (already checked); directory: absolute.
    public PolicyStore(PolicySet initial, string directory, PolicyOptions options, IReadOnlySet<string>? profiles, PolicyHistory history, AuditLog audit, TimeProvider time, ILogger<PolicyStore> logger)
    {
        Directory = directory;
        _options = options;
        _profiles = profiles;
        _history = history;
        _audit = audit;
        _time = time;
        _logger = logger;
        _current = new InForce(initial, new PolicyVersion(0, initial.Version, time.GetUtcNow(), []));
    }

    public string Directory { get; }

    public PolicySet Current => _current.Set;

    public PolicyVersion CurrentVersion => _current.Version;

    public PolicyRejection? LastRejection => _lastRejection;

    /// <summary>Fires when the next reload has been attempted (a version put in force, a change refused, or nothing new), the usual .NET way to follow a reloading source.</summary>
    public IChangeToken ReloadToken => new CancellationChangeToken(Volatile.Read(ref _reloaded).Token);

    /// <summary>Records the start-up version in the audit log and the history (once both are open), if it is not the last one recorded.</summary>
    public async Task InitializeAsync()
    {
        var set = _current.Set;
        var previous = (await _history.ListAsync(null, 1).ConfigureAwait(false)).FirstOrDefault()?.Hash;
        if (previous != set.Version)
        {
            try
            {
                await AuditAsync(set, previous).ConfigureAwait(false);
            }
            catch (AuditUnavailableException unavailable)
            {
                // The proxy still starts (every request will fail closed on the same log), but the
                // version joins the history only with its audit entry: the next start tries again.
                LogStartUpNotAudited(_logger, Short(set.Version), unavailable.Message);
                return;
            }
        }

        var version = await _history.RecordAsync(set, _time.GetUtcNow()).ConfigureAwait(false);
        _current = new InForce(set, version);
        LogInForce(_logger, Short(set.Version), set.Files.Count, set.RuleCount, set.ConsentCount, version.Id);
    }

    /// <summary>Starts reloading on changes (TrustedProxy:Policy:Watch).</summary>
    public void StartWatching()
    {
        lock (_watchGate)
        {
            if (!_options.Watch || _watcher is not null)
            {
                return;
            }

            _debounce = _time.CreateTimer(_ => _ = ReloadQuietlyAsync(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _watcher = new FileSystemWatcher(Directory)
            {
                IncludeSubdirectories = false,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            _watcher.Changed += OnChange;
            _watcher.Created += OnChange;
            _watcher.Deleted += OnChange;
            _watcher.Renamed += OnChange;
            _watcher.Error += (_, e) =>
            {
                LogWatchError(_logger, e.GetException());
                Schedule();
            };
            _watcher.EnableRaisingEvents = true;
        }
    }

    public void StopWatching()
    {
        lock (_watchGate)
        {
            _watcher?.Dispose();
            _watcher = null;
            _debounce?.Dispose();
            _debounce = null;
        }
    }

    /// <summary>
    /// Reads the directory again: a valid set that differs from the one in force replaces it (true);
    /// an invalid one is refused and the version in force stays (false, with <see cref="LastRejection"/>).
    /// </summary>
    public async Task<bool> ReloadAsync()
    {
        await _reloading.WaitAsync().ConfigureAwait(false);
        try
        {
            PolicySet set;
            try
            {
                set = PolicyLoader.LoadDirectory(Directory, _options, _profiles);
            }
            catch (PolicyLoadException rejected)
            {
                _lastRejection = new PolicyRejection(_time.GetUtcNow(), rejected.Errors);
                LogRejected(_logger, Short(_current.Set.Version), rejected.Errors[0].ToString(), rejected.Errors.Count);
                return false;
            }
            catch (IOException ex)
            {
                // A file replaced while it is read; the next change event reads it again.
                _lastRejection = new PolicyRejection(_time.GetUtcNow(), [new PolicyError(Directory, 0, 0, $"the files could not be read: {ex.Message}")]);
                LogRejected(_logger, Short(_current.Set.Version), _lastRejection.Errors[0].ToString(), 1);
                return false;
            }

            _lastRejection = null;
            if (set.Version == _current.Set.Version)
            {
                return false;
            }

            try
            {
                await AuditAsync(set, _current.Set.Version).ConfigureAwait(false);
            }
            catch (AuditUnavailableException unavailable)
            {
                _lastRejection = new PolicyRejection(_time.GetUtcNow(), [new PolicyError(Directory, 0, 0, $"the audit log could not record the change, so it is not in force: {unavailable.Message}")]);
                LogRejected(_logger, Short(_current.Set.Version), _lastRejection.Errors[0].ToString(), 1);
                return false;
            }

            var version = await _history.RecordAsync(set, _time.GetUtcNow()).ConfigureAwait(false);
            _current = new InForce(set, version);
            LogInForce(_logger, Short(set.Version), set.Files.Count, set.RuleCount, set.ConsentCount, version.Id);
            return true;
        }
        finally
        {
            _reloading.Release();
            Interlocked.Exchange(ref _reloaded, new CancellationTokenSource()).Cancel();
        }
    }

    public void Dispose()
    {
        StopWatching();
        _reloading.Dispose();
        _reloaded.Dispose();
    }

    private Task<long> AuditAsync(PolicySet set, string? previous) =>
        _audit.AppendPolicyChangeAsync(set.Version, set.Files.Select(f => $"{f.Name} sha256:{f.Sha256}").ToList(), previous, AuditActor.Proxy);

    public static string Short(string version) => version.Length > 12 ? version[..12] : version;

    private void OnChange(object sender, FileSystemEventArgs e)
    {
        if (PolicyLoader.IsPolicyFile(e.FullPath) || (e is RenamedEventArgs renamed && PolicyLoader.IsPolicyFile(renamed.OldFullPath)))
        {
            Schedule();
        }
    }

    private void Schedule()
    {
        lock (_watchGate)
        {
            _debounce?.Change(TimeSpan.FromMilliseconds(_options.ReloadDebounceMilliseconds), Timeout.InfiniteTimeSpan);
        }
    }

    private async Task ReloadQuietlyAsync()
    {
        try
        {
            await ReloadAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The index refused the history row: the version in force stays, and the next change tries again.
            LogReloadFailed(_logger, ex);
        }
    }

    private sealed record InForce(PolicySet Set, PolicyVersion Version);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Information, Message = "Policy version {Version} in force: {Files} files, {Rules} rules, {Consent} consent entries (history {HistoryId})")]
    private static partial void LogInForce(ILogger logger, string version, int files, int rules, int consent, long historyId);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Warning, Message = "Policy change refused; version {Version} stays in force: {Error} ({Count} problems)")]
    private static partial void LogRejected(ILogger logger, string version, string error, int count);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Warning, Message = "Watching the policy directory failed; reading it again")]
    private static partial void LogWatchError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Error, Message = "Reloading the policy failed; the version in force stays")]
    private static partial void LogReloadFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1215, Level = LogLevel.Error, Message = "Policy version {Version} could not be recorded in the audit log at start-up ({Reason}); requests will fail closed until it can be written")]
    private static partial void LogStartUpNotAudited(ILogger logger, string version, string reason);
}

/// <summary>The decision point over the policy set in force.</summary>
internal sealed class PolicyDecisionPoint(PolicyStore store) : IPolicyDecisionPoint
{
    public PolicyDecision Decide(PolicyRequest request)
    {
        using var span = ProxyTracing.Start("policy.decide");
        var decision = PolicyEvaluator.Evaluate(store.Current, request);
        span?.SetTag(ProxyTracing.Action, request.Action.ToString());
        span?.SetTag(ProxyTracing.Permitted, decision.Permitted);
        return decision;
    }
}
