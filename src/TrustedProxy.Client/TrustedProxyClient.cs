using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using TrustedProxy.ObliviousTransfer;

namespace TrustedProxy.Client;

/// <summary>
/// Talks to a TrustedProxy over mutual TLS. The proxy is trusted only if its certificate chains to
/// the federation's CA given here (never the system store), and this client presents its member
/// certificate in every handshake. Thread-safe; keep one per identity.
/// </summary>
public sealed class TrustedProxyClient : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly HttpClient _http;

    /// <summary>Creates a client for <paramref name="baseAddress"/> presenting <paramref name="clientCertificate"/> (with its private key).</summary>
    public TrustedProxyClient(Uri baseAddress, X509Certificate2 clientCertificate, X509Certificate2 federationCa, TimeSpan? timeout = null)
    {
        if (!clientCertificate.HasPrivateKey)
        {
            throw new ArgumentException("the client certificate has no private key", nameof(clientCertificate));
        }

        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.Add(federationCa);
        policy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));

        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificateContext = SslStreamCertificateContext.Create(clientCertificate, additionalCertificates: null, offline: true),
                CertificateChainPolicy = policy,
                RemoteCertificateValidationCallback = (_, _, _, errors) => errors == SslPolicyErrors.None,
            },
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
        };
        _http = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromMinutes(30) };
    }

    /// <summary>Loads the member credential from a PKCS#12 file and the CA from a PEM file.</summary>
    public static TrustedProxyClient FromFiles(Uri baseAddress, string pkcs12Path, string? pkcs12Password, string caCertificatePemPath, TimeSpan? timeout = null)
    {
        var certificate = X509CertificateLoader.LoadPkcs12FromFile(pkcs12Path, pkcs12Password ?? string.Empty, X509KeyStorageFlags.EphemeralKeySet);
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caCertificatePemPath));
        return new TrustedProxyClient(baseAddress, certificate, ca, timeout);
    }

    /// <summary>The HTTP header that declares why records are wanted.</summary>
    public const string PurposeHeader = "Purpose-Of-Use";

    /// <summary>
    /// The purpose of use sent with every request: treatment (the proxy's default), research (records
    /// come de-identified) or emergency.
    /// </summary>
    public string? PurposeOfUse
    {
        get => _http.DefaultRequestHeaders.TryGetValues(PurposeHeader, out var values) ? values.FirstOrDefault() : null;
        set
        {
            _http.DefaultRequestHeaders.Remove(PurposeHeader);
            if (value is not null)
            {
                _http.DefaultRequestHeaders.Add(PurposeHeader, value);
            }
        }
    }

    /// <summary>The header that carries a break-glass justification.</summary>
    public const string JustificationHeader = "Break-Glass-Justification";

    /// <summary>
    /// A break-glass justification sent with every request (one line of printable ASCII, bounded by the
    /// proxy): with the emergency purpose it invokes the policy's break-glass rule, which raises an
    /// alert and records the text with each decision. Never put a patient's identity in it.
    /// </summary>
    public string? BreakGlassJustification
    {
        get => _http.DefaultRequestHeaders.TryGetValues(JustificationHeader, out var values) ? values.FirstOrDefault() : null;
        set
        {
            _http.DefaultRequestHeaders.Remove(JustificationHeader);
            if (value is not null)
            {
                _http.DefaultRequestHeaders.Add(JustificationHeader, value);
            }
        }
    }

    /// <summary>Uploads one DICOM Part 10 file, streamed; returns once the proxy has stored it.</summary>
    public async Task<UploadResult> UploadAsync(Stream dicom, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        using var content = new StreamContent(progress is null ? dicom : new ProgressStream(dicom, progress), 1 << 16);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        if (dicom.CanSeek)
        {
            content.Headers.ContentLength = dicom.Length - dicom.Position;
        }

        using var response = await _http.PostAsync("api/v1/records", content, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<UploadResult>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Uploads a file from disk.</summary>
    public async Task<UploadResult> UploadFileAsync(string path, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return await UploadAsync(file, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Searches the records this member may see.</summary>
    public async Task<RecordPage> SearchAsync(RecordSearch search, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        void Add(string name, string? value)
        {
            if (!string.IsNullOrWhiteSpace(value))
            {
                query.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }

        Add("patientId", search.PatientId);
        Add("issuerOfPatientId", search.IssuerOfPatientId);
        Add("view", search.Deidentified ? "deidentified" : null);
        Add("studyInstanceUid", search.StudyInstanceUid);
        Add("modality", search.Modality);
        Add("from", search.From?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Add("to", search.To?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Add("limit", search.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("offset", search.Offset?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await _http.GetAsync("api/v1/records" + (query.Count > 0 ? "?" + string.Join('&', query) : string.Empty), cancellationToken).ConfigureAwait(false);
        return await ReadAsync<RecordPage>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A record's index entry.</summary>
    public async Task<RecordSummary> GetAsync(string handle, bool deidentified = false, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/records/{Uri.EscapeDataString(handle)}{(deidentified ? "?view=deidentified" : "")}", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<RecordSummary>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Streams a record's DICOM file into <paramref name="destination"/> and checks it against the
    /// proxy's Repr-Digest; a mismatch throws, so a caller never keeps a corrupted copy unknowingly.
    /// The de-identified view (asked for, or given for research) has no digest to check.
    /// </summary>
    public async Task<long> FetchAsync(string handle, Stream destination, IProgress<long>? progress = null, bool deidentified = false, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/records/{Uri.EscapeDataString(handle)}/content{(deidentified ? "?view=deidentified" : "")}", HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        var expected = ParseDigest(response.Headers.TryGetValues("Repr-Digest", out var values) ? values.FirstOrDefault() : null);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            total += read;
            progress?.Report(total);
        }

        if (expected is not null && !CryptographicOperations.FixedTimeEquals(hash.GetHashAndReset(), expected))
        {
            throw new TrustedProxyException(0, "urn:trustedproxy:problem:digest-mismatch", "Digest mismatch", "the received record does not match the digest the proxy announced");
        }

        return total;
    }

    /// <summary>
    /// Exports records to a recipient (docs/export.md): the proxy streams a bundle encrypted to the
    /// recipient's certificate and signed by the proxy into <paramref name="destination"/>. Returns the
    /// bundle's identifier. The bundle is only complete if this returns; the recipient's reader
    /// refuses an incomplete one.
    /// </summary>
    public async Task<string> ExportAsync(ExportRequest request, Stream destination, bool deidentified = false, CancellationToken cancellationToken = default)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, $"api/v1/exports{(deidentified ? "?view=deidentified" : "")}") { Content = JsonContent.Create(request, options: Json) };
        using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await body.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
        return response.Headers.TryGetValues("Export-Bundle", out var values) ? values.FirstOrDefault() ?? string.Empty : string.Empty;
    }

    /// <summary>
    /// Takes the records <paramref name="choose"/> out of the set <paramref name="among"/> by k-out-of-N
    /// oblivious transfer (docs/oblivious-transfer.md): the proxy sends every record of the set, each
    /// under its own key, and learns only that this many were taken, never which. Returns the chosen
    /// files in the order chosen.
    /// </summary>
    public async Task<IReadOnlyList<byte[]>> FetchObliviousAsync(IReadOnlyList<string> among, IReadOnlyList<string> choose, bool deidentified = false, CancellationToken cancellationToken = default)
    {
        if (choose.Count == 0 || choose.Any(h => !among.Contains(h)))
        {
            throw new ArgumentException("choose one or more records of the set offered", nameof(choose));
        }

        var view = deidentified ? "?view=deidentified" : string.Empty;
        ObliviousOffer described;
        using (var response = await _http.PostAsJsonAsync($"api/v1/oblivious/offers{view}", new ObliviousOfferRequest(among, choose.Count), Json, cancellationToken).ConfigureAwait(false))
        {
            described = await ReadAsync<ObliviousOffer>(response, cancellationToken).ConfigureAwait(false);
        }

        var offer = OtOffer.Parse(Convert.FromBase64String(described.Offer));
        var indexOf = described.Records.ToDictionary(r => r.Handle, r => r.Index, StringComparer.Ordinal);
        if (offer.Count != among.Count || !among.All(indexOf.ContainsKey))
        {
            throw new OtProtocolException("the proxy offered another set than the one asked for");
        }

        var choices = choose.Select(h => indexOf[h]).ToList();
        var receiver = new OtReceiver(offer, choices);
        using var content = new ByteArrayContent(receiver.Choice.ToBytes());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/oblivious/offers/{Uri.EscapeDataString(described.SessionId)}/choice{view}") { Content = content };
        using var transfer = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(transfer, cancellationToken).ConfigureAwait(false);
        await using var body = await transfer.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return await OtTransferStream.ReadAsync(body, receiver, offer, choices, maxRecordBytes: 1L << 32, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes a record (administrators).</summary>
    public async Task DeleteAsync(string handle, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"api/v1/records/{Uri.EscapeDataString(handle)}", cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts the object-format migration (administrators), or lets the running one go on; answers its progress.</summary>
    public async Task<ObjectFormatMigrationProgress> StartObjectFormatMigrationAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsync("api/v1/admin/object-format/migrate", content: null, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<ObjectFormatMigrationProgress>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The object-format migration's progress (administrators).</summary>
    public async Task<ObjectFormatMigrationProgress> ObjectFormatMigrationAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("api/v1/admin/object-format/migrate", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<ObjectFormatMigrationProgress>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The identity the proxy reads from this client's certificate.</summary>
    public async Task<WhoAmI> WhoAmIAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("api/v1/whoami", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<WhoAmI>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Issues a certificate through the admin API; send a CSR, or a password for a generated PKCS#12.</summary>
    public async Task<IssuedCertificate> IssueCertificateAsync(string organisation, string role, int? validityDays = null, string? csrPem = null, string? pkcs12Password = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("api/v1/ca/certificates", new { organisation, role, validityDays, csrPem, pkcs12Password }, Json, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<IssuedCertificate>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every certificate the CA issued.</summary>
    public async Task<IReadOnlyList<CertificateInfo>> ListCertificatesAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("api/v1/ca/certificates", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<List<CertificateInfo>>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Revokes a certificate through the admin API.</summary>
    public async Task RevokeCertificateAsync(string serial, string? reason = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync($"api/v1/ca/certificates/{Uri.EscapeDataString(serial)}/revoke", new { reason }, Json, cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The current CRL (DER).</summary>
    public async Task<byte[]> GetCrlAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("ca/crl", cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Traces a copy found outside (compliance officers): a DICOM file, or a PNG of one frame's stored
    /// values (<paramref name="mediaType"/> <c>application/dicom</c> or <c>image/png</c>). The answer
    /// names the consumer and request the copy was handed out under, or says that no valid mark was found.
    /// </summary>
    public async Task<TraceReport> TraceAsync(Stream copy, string mediaType, CancellationToken cancellationToken = default)
    {
        using var content = new StreamContent(copy);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await _http.PostAsync("api/v1/trace", content, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<TraceReport>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Traces a file: a PNG if it starts with the PNG signature, else DICOM.</summary>
    public async Task<TraceReport> TraceFileAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var file = File.OpenRead(path);
        var head = new byte[8];
        var read = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        file.Position = 0;
        var png = read == 8 && head.AsSpan().SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
        return await TraceAsync(file, png ? "image/png" : "application/dicom", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The policy in force, its files and the last refused change (compliance officers).</summary>
    public async Task<PolicyInForce> GetPolicyAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("api/v1/policy", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<PolicyInForce>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Policy versions the proxy put in force, newest first (compliance officers).</summary>
    public async Task<IReadOnlyList<PolicyVersionInfo>> PolicyHistoryAsync(long? before = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var query = string.Join("&", new[] { before is null ? null : $"before={before}", limit is null ? null : $"limit={limit}" }.OfType<string>());
        using var response = await _http.GetAsync($"api/v1/policy/history{(query.Length > 0 ? "?" + query : "")}", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<List<PolicyVersionInfo>>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One policy version with its files' text (compliance officers).</summary>
    public async Task<PolicyVersionInfo> PolicyVersionAsync(long id, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/policy/history/{id}", cancellationToken).ConfigureAwait(false);
        return await ReadAsync<PolicyVersionInfo>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Evaluates a request against the policy in force without performing it (compliance officers).</summary>
    public async Task<WhatIfResult> WhatIfAsync(WhatIfRequest request, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("api/v1/policy/what-if", request, Json, cancellationToken).ConfigureAwait(false);
        return await ReadAsync<WhatIfResult>(response, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends any request over this client's mutual-TLS connection (for endpoints without a helper).</summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken = default) =>
        _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public void Dispose() => _http.Dispose();

    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken).ConfigureAwait(false)
            ?? throw new TrustedProxyException((int)response.StatusCode, null, "Empty response", "the proxy sent no body");
    }

    private static async Task ThrowIfProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        ProblemBody? problem = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/problem+json")
        {
            problem = await response.Content.ReadFromJsonAsync<ProblemBody>(Json, cancellationToken).ConfigureAwait(false);
        }

        throw new TrustedProxyException((int)response.StatusCode, problem?.Type, problem?.Title ?? response.ReasonPhrase ?? "Error", problem?.Detail ?? $"the proxy answered {(int)response.StatusCode}");
    }

    private static byte[]? ParseDigest(string? header)
    {
        // RFC 9530: sha-256=:<base64>:
        const string prefix = "sha-256=:";
        if (header is null || !header.StartsWith(prefix, StringComparison.Ordinal) || !header.EndsWith(':'))
        {
            return null;
        }

        return Convert.FromBase64String(header[prefix.Length..^1]);
    }

    private sealed record ProblemBody(string? Type, string? Title, string? Detail, int? Status);
}
