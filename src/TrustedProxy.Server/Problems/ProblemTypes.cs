namespace TrustedProxy.Server.Problems;

/// <summary>A kind of error the API reports, with a stable type URI (RFC 9457) and status.</summary>
internal sealed record ProblemType(string Slug, int Status, string Title)
{
    public const string Prefix = "urn:trustedproxy:problem:";

    public string Uri => Prefix + Slug;
}

/// <summary>Every problem type the API can answer with; docs/api.md lists them for clients.</summary>
internal static class ProblemTypes
{
    public static readonly ProblemType Unauthenticated = new("unauthenticated", 401, "Client certificate required");
    public static readonly ProblemType CertificateRevoked = new("certificate-revoked", 401, "Client certificate revoked");
    public static readonly ProblemType Forbidden = new("forbidden", 403, "Denied by policy");
    public static readonly ProblemType NotFound = new("not-found", 404, "Not found");
    public static readonly ProblemType RecordNotFound = new("record-not-found", 404, "No such record");
    public static readonly ProblemType MethodNotAllowed = new("method-not-allowed", 405, "Method not allowed");
    public static readonly ProblemType UnsupportedMediaType = new("unsupported-media-type", 415, "Unsupported media type");
    public static readonly ProblemType NotAcceptable = new("not-acceptable", 406, "Cannot answer in the accepted media type");
    public static readonly ProblemType NotDicom = new("not-dicom-part10", 415, "Not a DICOM Part 10 file");
    public static readonly ProblemType InvalidDicom = new("invalid-dicom", 400, "Malformed DICOM file");
    public static readonly ProblemType DicomLimitExceeded = new("dicom-limit-exceeded", 400, "DICOM file exceeds a configured limit");
    public static readonly ProblemType PayloadTooLarge = new("payload-too-large", 413, "Request body too large");
    public static readonly ProblemType RetrieveTooLarge = new("retrieve-too-large", 413, "More instances than one retrieval returns");
    public static readonly ProblemType BadRequest = new("bad-request", 400, "Bad request");
    public static readonly ProblemType InvalidRecipient = new("invalid-recipient", 400, "Export recipient refused");
    public static readonly ProblemType ExportTooLarge = new("export-too-large", 413, "More records than one export bundle carries");
    public static readonly ProblemType InvalidQuery = new("invalid-query", 400, "Invalid query parameter");
    public static readonly ProblemType CaRequestRefused = new("ca-request-refused", 400, "Certificate authority request refused");
    public static readonly ProblemType CaKeyUnavailable = new("ca-key-unavailable", 503, "CA private key not available to the server");
    public static readonly ProblemType CertificateNotFound = new("certificate-not-found", 404, "No such certificate");
    public static readonly ProblemType IntegrityFailure = new("integrity-failure", 502, "Stored record failed its integrity check");
    public static readonly ProblemType ObjectMissing = new("object-missing", 502, "Stored object missing from the backend");
    public static readonly ProblemType BackendUnavailable = new("backend-unavailable", 503, "Cloud backend unavailable");
    public static readonly ProblemType InvalidRequestContext = new("invalid-request-context", 400, "Invalid purpose of use or view");
    public static readonly ProblemType UnknownProfile = new("unknown-deidentification-profile", 400, "Unknown de-identification profile");
    public static readonly ProblemType DeidentificationRefused = new("deidentification-refused", 422, "De-identified view refused");
    public static readonly ProblemType ExecutablePreamble = new("executable-preamble", 400, "Executable header in the DICOM preamble");
    public static readonly ProblemType InvalidOtMessage = new("invalid-ot-message", 400, "Malformed oblivious-transfer message");
    public static readonly ProblemType OfferNotFound = new("ot-offer-not-found", 404, "No such open oblivious-transfer offer");
    public static readonly ProblemType Busy = new("busy", 503, "Too many requests of this kind at once");
    public static readonly ProblemType TooManyOffers = new("ot-too-many-offers", 503, "Too many oblivious transfers waiting");
    public static readonly ProblemType InvalidImage = new("invalid-image", 400, "Not an image this endpoint reads");
    public static readonly ProblemType AuditUnavailable = new("audit-unavailable", 503, "Audit log unavailable");
    public static readonly ProblemType AntiforgeryFailed = new("antiforgery-failed", 400, "Form token missing or invalid");
    public static readonly ProblemType FingerprintRequired = new("fingerprint-required", 403, "The policy requires a fingerprint this representation cannot carry");
    public static readonly ProblemType RenderTooLarge = new("render-too-large", 406, "Instance too large to render in memory");
    public static readonly ProblemType ObliviousSetTooSmall = new("ot-set-too-small", 403, "Oblivious-transfer set smaller than the policy asks");
    public static readonly ProblemType PolicyVersionNotFound = new("policy-version-not-found", 404, "No such policy version");
    public static readonly ProblemType MigrationUnavailable = new("migration-unavailable", 409, "Migration needs the upload cache");
    public static readonly ProblemType DuplicateInstance = new("duplicate-instance", 409, "Instance already stored with other content");
    public static readonly ProblemType InsufficientStorage = new("insufficient-storage", 507, "Local disk full");
    public static readonly ProblemType UriTooLong = new("uri-too-long", 414, "Request target too long");
    public static readonly ProblemType HeadersTooLarge = new("request-headers-too-large", 431, "Request headers too large");
    public static readonly ProblemType Internal = new("internal-error", 500, "Internal error");

    public static IEnumerable<ProblemType> All =>
    [
        Unauthenticated, CertificateRevoked, Forbidden, NotFound, RecordNotFound, MethodNotAllowed, UnsupportedMediaType, NotAcceptable, NotDicom,
        InvalidDicom, DicomLimitExceeded, PayloadTooLarge, BadRequest, InvalidQuery, CaRequestRefused, CaKeyUnavailable,
        CertificateNotFound, IntegrityFailure, ObjectMissing, BackendUnavailable, InvalidRequestContext, UnknownProfile,
        DeidentificationRefused, ExecutablePreamble, InvalidOtMessage, OfferNotFound, TooManyOffers, InvalidImage, AuditUnavailable, AntiforgeryFailed,
        ObliviousSetTooSmall, PolicyVersionNotFound, MigrationUnavailable, DuplicateInstance, InsufficientStorage, UriTooLong, HeadersTooLarge, Internal,
    ];
}
