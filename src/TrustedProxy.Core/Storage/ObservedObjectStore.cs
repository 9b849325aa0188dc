using System.Globalization;
using System.Runtime.CompilerServices;

namespace TrustedProxy.Storage;

/// <summary>What a curious cloud sees of one operation, and nothing more.</summary>
/// <param name="At">When the operation reached the backend.</param>
/// <param name="Operation"><c>put</c>, <c>get</c>, <c>delete</c>, <c>exists</c> or <c>list</c>.</param>
/// <param name="Name">The object name (empty for a list).</param>
/// <param name="Length">Bytes moved (0 where none).</param>
public sealed record CloudObservation(DateTimeOffset At, string Operation, string Name, long Length)
{
    /// <summary>One CSV line: time (ISO 8601), operation, name, length.</summary>
    public string ToCsv() => string.Create(CultureInfo.InvariantCulture, $"{At.UtcDateTime:O},{Operation},{Name},{Length}");

    public static CloudObservation ParseCsv(string line)
    {
        var parts = line.Split(',');
        if (parts.Length != 4)
        {
            throw new FormatException("an observation line is time,operation,name,length");
        }

        return new CloudObservation(DateTimeOffset.Parse(parts[0], CultureInfo.InvariantCulture), parts[1], parts[2], long.Parse(parts[3], CultureInfo.InvariantCulture));
    }
}

/// <summary>Where observations go.</summary>
public interface ICloudObservationSink
{
    void Record(CloudObservation observation);
}

/// <summary>Keeps observations in memory (tests, simulation).</summary>
public sealed class InMemoryObservationSink : ICloudObservationSink
{
    private readonly List<CloudObservation> _observations = [];

    public void Record(CloudObservation observation)
    {
        lock (_observations)
        {
            _observations.Add(observation);
        }
    }

    public IReadOnlyList<CloudObservation> Snapshot()
    {
        lock (_observations)
        {
            return _observations.ToList();
        }
    }
}

/// <summary>Appends observations to a CSV file, a line each, flushed per line (an operator's record of what the cloud was shown).</summary>
public sealed class CsvObservationSink : ICloudObservationSink, IDisposable
{
    private readonly StreamWriter _writer;

    public CsvObservationSink(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public void Record(CloudObservation observation)
    {
        lock (_writer)
        {
            _writer.WriteLine(observation.ToCsv());
        }
    }

    public static IReadOnlyList<CloudObservation> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(CloudObservation.ParseCsv).ToList();

    public void Dispose() => _writer.Dispose();
}

/// <summary>
/// A decorator that records exactly what the backend observes (time, operation, name, size) and
/// passes every call through unchanged. Only successful operations are recorded: a failed call
/// never reached the cloud's log in a usable form.
/// </summary>
public sealed class ObservedObjectStore(IObjectStore inner, ICloudObservationSink sink, TimeProvider time) : IObjectStore
{
    public string Name => inner.Name;

    public IObjectStore Inner => inner;

    public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        var result = await inner.PutIfAbsentAsync(name, content, length, cancellationToken).ConfigureAwait(false);
        sink.Record(new CloudObservation(time.GetUtcNow(), "put", name.ToString(), length));
        return result;
    }

    public async Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        var stream = await inner.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
        sink.Record(new CloudObservation(time.GetUtcNow(), "get", name.ToString(), stream.CanSeek ? stream.Length : 0));
        return stream;
    }

    public async Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
    {
        var deleted = await inner.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
        sink.Record(new CloudObservation(time.GetUtcNow(), "delete", name.ToString(), 0));
        return deleted;
    }

    public async Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken)
    {
        var exists = await inner.ExistsAsync(name, cancellationToken).ConfigureAwait(false);
        sink.Record(new CloudObservation(time.GetUtcNow(), "exists", name.ToString(), 0));
        return exists;
    }

    public async IAsyncEnumerable<StoredObject> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        sink.Record(new CloudObservation(time.GetUtcNow(), "list", string.Empty, 0));
        await foreach (var item in inner.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return item;
        }
    }
}
