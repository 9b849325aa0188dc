namespace TrustedProxy.Testing.Storage;

/// <summary>
/// One request exactly as it reached the cloud's front door: everything the cloud could look at to
/// tell one write from another (method, path, query, every header, body size and digest, the first
/// bytes of the body, timing), and what was answered.
/// </summary>
public sealed record WireRequest(
    DateTimeOffset Time,
    string Method,
    string Path,
    string Query,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    long BodyLength,
    string BodySha256,
    byte[] BodyPrefix)
{
    /// <summary>The HTTP status answered; 0 when the connection was dropped (upstream unreachable).</summary>
    public int Status { get; init; }

    /// <summary>The error code the front answered with itself (a failed check, a refusal by the test's hook), or null when upstream answered.</summary>
    public string? FrontError { get; init; }

    /// <summary>The object key (path without the bucket), for path-style requests.</summary>
    public string Key
    {
        get
        {
            var trimmed = Path.TrimStart('/');
            var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
            return slash < 0 ? string.Empty : Uri.UnescapeDataString(trimmed[(slash + 1)..]);
        }
    }

    /// <summary>
    /// A permanent refusal as a store would classify it: a 4xx other than not-found, conflict or a
    /// failed precondition (which put-if-absent and reads of missing objects produce in normal use).
    /// </summary>
    public bool IsRefusal => Status is >= 400 and < 500 and not 404 and not 409 and not 412;

    /// <summary>The value of a header (case-insensitive name), or null.</summary>
    public string? Header(string name) =>
        Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).FirstOrDefault();

    /// <summary>Every header name, lower-cased, for comparing request shapes.</summary>
    public IReadOnlySet<string> HeaderNames => Headers.Select(h => h.Key.ToLowerInvariant()).ToHashSet();

    public override string ToString() => $"{Method} {Path}{Query} -> {Status}{(FrontError is null ? string.Empty : " " + FrontError)}";
}
