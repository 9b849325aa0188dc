namespace TrustedProxy.Testing.Privacy;

/// <summary>
/// A clock that only moves when told to: the simulation sets it to each event's instant before
/// acting, so whatever reads it (the observation decorator) stamps virtual time. Timers are not
/// supported; the simulation is an event loop and needs none.
/// </summary>
public sealed class VirtualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <summary>Moves the clock to <paramref name="instant"/>; virtual time never goes back.</summary>
    public void MoveTo(DateTimeOffset instant)
    {
        if (instant < _now)
        {
            throw new InvalidOperationException($"virtual time cannot go back from {_now:O} to {instant:O}");
        }

        _now = instant;
    }

    public void Advance(TimeSpan by) => MoveTo(_now + by);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        throw new NotSupportedException("the virtual clock drives an event loop; it has no timers");
}
