namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// Virtual time for a loop that only ever waits on timers (the constant-rate group-read loop): every
/// timer fires as soon as it is created, and the clock jumps to its due time. The loop then runs as
/// fast as its I/O allows and sees the times it asked for; nothing sleeps. One-shot timers only.
/// </summary>
public sealed class JumpingTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (period != Timeout.InfiniteTimeSpan && period != TimeSpan.Zero)
        {
            throw new NotSupportedException("only one-shot timers jump");
        }

        var timer = new JumpingTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private void JumpBy(TimeSpan due)
    {
        var target = GetUtcNow().UtcTicks + Math.Max(0, due.Ticks);
        long current;
        do
        {
            current = Interlocked.Read(ref _ticks);
        }
        while (current < target && Interlocked.CompareExchange(ref _ticks, target, current) != current);
    }

    private sealed class JumpingTimer(JumpingTimeProvider time, TimerCallback callback, object? state) : ITimer
    {
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime == Timeout.InfiniteTimeSpan || Volatile.Read(ref _disposed) != 0)
            {
                return true;
            }

            time.JumpBy(dueTime);
            ThreadPool.QueueUserWorkItem(_ =>
            {
                if (Volatile.Read(ref _disposed) == 0)
                {
                    callback(state);
                }
            });
            return true;
        }

        public void Dispose() => Interlocked.Exchange(ref _disposed, 1);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
