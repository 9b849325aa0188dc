namespace TrustedProxy.Storage;

/// <summary>
/// The backend refused the operation for good (a 4xx other than not-found, conflict or a failed
/// precondition: a bad digest, a payload-hash mismatch, access denied, too large). Retrying the
/// same request will not help; the caller decides what becomes of the object.
/// </summary>
public sealed class BackendRefusedException(string backend, int status, string code, Exception inner)
    : Exception($"the {backend} backend refused the request: {status} {code}", inner)
{
    /// <summary>The backend's configuration name.</summary>
    public string Backend { get; } = backend;

    /// <summary>The HTTP status the backend answered (0 when it was not an HTTP answer).</summary>
    public int Status { get; } = status;

    /// <summary>The backend's own error code (for example <c>XAmzContentSHA256Mismatch</c>, <c>BadDigest</c>, <c>AccessDenied</c>).</summary>
    public string Code { get; } = code;
}
