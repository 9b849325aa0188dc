using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TrustedProxy.IO;

namespace TrustedProxy.Audit;

/// <summary>
/// Where signed checkpoints are pushed, outside the proxy (docs/audit-log.md, "Witness"). Section
/// TrustedProxy:Audit:Witness; either, both or neither of <see cref="Directory"/> and <see cref="Url"/>.
/// </summary>
public sealed record AuditWitnessOptions
{
    /// <summary>A directory the proxy can create files in but that its operators cannot rewrite (a WORM or append-only mount, an object-lock bucket mounted).</summary>
    public string? Directory { get; init; }

    /// <summary>An HTTP(S) endpoint, run by someone other than the proxy's operators, that stores every checkpoint POSTed to it and lists them on GET.</summary>
    public string? Url { get; init; }

    /// <summary>First wait after a failed push; doubled after each further failure.</summary>
    [Range(1, 3600)]
    public int RetryInitialSeconds { get; init; } = 1;

    /// <summary>Longest wait between two attempts while the witness is unreachable.</summary>
    [Range(1, 86_400)]
    public int RetryMaxSeconds { get; init; } = 300;

    /// <summary>Longest one HTTP push or read may take.</summary>
    [Range(1, 600)]
    public int TimeoutSeconds { get; init; } = 30;

    public bool Enabled => !string.IsNullOrWhiteSpace(Directory) || !string.IsNullOrWhiteSpace(Url);

    /// <summary>Every problem at once, each naming its setting.</summary>
    public IEnumerable<string> Validate()
    {
        const string Section = "TrustedProxy:Audit:Witness";
        if (Url is { Length: > 0 } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) || !string.IsNullOrEmpty(uri.UserInfo)))
        {
            yield return $"{Section}:Url: '{url}' is not an absolute http(s) URL without credentials";
        }

        if (Directory is { Length: > 0 } directory && !Path.IsPathFullyQualified(directory))
        {
            yield return $"{Section}:Directory: '{directory}' is not an absolute path (a witness directory is a mount of its own, never under the data directory)";
        }

        if (RetryMaxSeconds < RetryInitialSeconds)
        {
            yield return $"{Section}:RetryMaxSeconds ({RetryMaxSeconds}) is less than RetryInitialSeconds ({RetryInitialSeconds})";
        }
    }
}

/// <summary>A checkpoint as a witness holds it, with the name messages give it (its file, its position).</summary>
public sealed record WitnessedCheckpoint(string Name, AuditCheckpoint Checkpoint);

/// <summary>
/// A witness: stores every checkpoint it is sent, never changes or removes one, and gives them all
/// back for verification. It checks nothing itself; the verifier does.
/// </summary>
internal interface IAuditWitness
{
    /// <summary>"directory" or "http": names the witness in metrics, marker files and messages.</summary>
    string Name { get; }

    /// <summary>Where it is (a path, a URL): for messages.</summary>
    string Location { get; }

    /// <summary>Stores <paramref name="checkpoint"/>; returns once it is durable there. Sending the same checkpoint again is harmless.</summary>
    Task SubmitAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken);

    /// <summary>Everything witnessed; a stored item that is not a checkpoint throws <see cref="FormatException"/> naming it.</summary>
    Task<IReadOnlyList<WitnessedCheckpoint>> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>The witnesses the options name, and the one a verification names (<c>--witness dir|url</c>).</summary>
internal static class AuditWitnesses
{
    public static IReadOnlyList<IAuditWitness> From(AuditWitnessOptions options, HttpClient? http = null)
    {
        var witnesses = new List<IAuditWitness>();
        if (options.Directory is { Length: > 0 } directory)
        {
            witnesses.Add(new DirectoryAuditWitness(directory));
        }

        if (options.Url is { Length: > 0 } url)
        {
            witnesses.Add(new HttpAuditWitness(new Uri(url), http ?? new HttpClient(), TimeSpan.FromSeconds(options.TimeoutSeconds)));
        }

        return witnesses;
    }

    public static IAuditWitness Parse(string location, HttpClient http) =>
        Uri.TryCreate(location, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? new HttpAuditWitness(uri, http, TimeSpan.FromSeconds(new AuditWitnessOptions().TimeoutSeconds))
            : new DirectoryAuditWitness(Path.GetFullPath(location));

    /// <summary>Anchors for the verifier: every witnessed checkpoint, named by where it was found.</summary>
    public static async Task<IReadOnlyList<AuditAnchor>> AnchorsAsync(IAuditWitness witness, CancellationToken cancellationToken) =>
        [.. (await witness.ReadAsync(cancellationToken).ConfigureAwait(false))
            .Select(w => new AuditAnchor($"the witness's {w.Name}", w.Checkpoint, External: true))];
}

/// <summary>
/// One file per checkpoint, <c>checkpoint-&lt;size, 20 digits&gt;-&lt;SHA-256 of the file, 16 hex&gt;.json</c>,
/// created exclusively and fsync'd: never overwritten, so a mount that refuses overwrites and
/// deletions (WORM, append-only, object lock) keeps every one. The name is content-addressed, so a
/// second push of the same checkpoint (after a crash before the marker) finds it there, and a
/// different checkpoint of the same size is stored beside it, not over it: exactly the evidence of a fork.
/// </summary>
internal sealed class DirectoryAuditWitness(string directory) : IAuditWitness
{
    private const string Prefix = "checkpoint-";

    public string Name => "directory";

    public string Location => directory;

    public Task SubmitAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            // Not created here: a missing mount must show as an outage, not fill the root file system.
            throw new DirectoryNotFoundException($"the witness directory '{directory}' does not exist (not mounted?)");
        }

        var content = Encoding.UTF8.GetBytes(AuditCheckpointFile.ToJson(checkpoint));
        var name = string.Create(CultureInfo.InvariantCulture, $"{Prefix}{checkpoint.Size:D20}-{Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 8))}.json");
        var path = Path.Combine(directory, name);
        if (File.Exists(path))
        {
            return Task.CompletedTask;
        }

        try
        {
            using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.None });
            file.Write(content);
            file.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(content))
        {
            // Raced with ourselves (two processes pushing the same checkpoint): it is there.
        }

        Durability.SyncDirectory(directory);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<WitnessedCheckpoint>> ReadAsync(CancellationToken cancellationToken)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"no witness directory '{directory}'");
        }

        var result = new List<WitnessedCheckpoint>();
        foreach (var path in System.IO.Directory.GetFiles(directory, Prefix + "*.json").Order(StringComparer.Ordinal))
        {
            result.Add(new WitnessedCheckpoint($"checkpoint file '{Path.GetFileName(path)}'", AuditCheckpointFile.Read(path)));
        }

        return Task.FromResult<IReadOnlyList<WitnessedCheckpoint>>(result);
    }
}

/// <summary>
/// The HTTP witness protocol (docs/audit-log.md, "Witness"): <c>POST &lt;url&gt;</c> with one checkpoint
/// as JSON (the checkpoint file's format) stores it, any 2xx meaning durable; <c>GET &lt;url&gt;</c>
/// answers a JSON array of every checkpoint stored, in the order received.
/// </summary>
internal sealed class HttpAuditWitness(Uri url, HttpClient http, TimeSpan timeout) : IAuditWitness
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json") { CharSet = "utf-8" };

    public string Name => "http";

    public string Location => url.GetLeftPart(UriPartial.Path);

    public async Task SubmitAsync(AuditCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        using var content = new StringContent(AuditCheckpointFile.ToJson(checkpoint), Encoding.UTF8);
        content.Headers.ContentType = JsonType;
        try
        {
            using var response = await http.PostAsync(url, content, timeoutSource.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new HttpRequestException($"the witness answered {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the witness did not answer within {timeout.TotalSeconds:0} s");
        }
    }

    public async Task<IReadOnlyList<WitnessedCheckpoint>> ReadAsync(CancellationToken cancellationToken)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var body = await http.GetStringAsync(url, timeoutSource.Token).ConfigureAwait(false);
        JsonElement[] items;
        try
        {
            items = JsonSerializer.Deserialize<JsonElement[]>(body) ?? [];
        }
        catch (JsonException)
        {
            throw new FormatException($"the witness at '{Location}' did not answer a JSON array of checkpoints");
        }

        return [.. items.Select((item, i) => new WitnessedCheckpoint(
            string.Create(CultureInfo.InvariantCulture, $"checkpoint {i + 1} at '{Location}'"),
            AuditCheckpointFile.Parse(item.GetRawText(), string.Create(CultureInfo.InvariantCulture, $"checkpoint {i + 1} at '{Location}'"))))];
    }
}
