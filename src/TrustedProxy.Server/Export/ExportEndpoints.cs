using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Export;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Records;

namespace TrustedProxy.Server.Export;

/// <summary>
/// Export to a recipient (docs/export.md): the records a request may read, in the view and with the
/// marks the policy gives each (exactly as a retrieval gets them, through <see cref="RecordViews"/>),
/// encrypted to a member certificate of this federation and signed by the proxy, streamed as one
/// bundle. Everything that can refuse (the recipient, a record, the policy, the de-identified view's
/// eligibility, the limits) is checked before the first byte; the export's entry, naming the set,
/// is in the audit log before it.
/// </summary>
internal static class ExportEndpoints
{
    public const string BundleMediaType = "application/vnd.trustedproxy.export-bundle";

    /// <summary>The response header naming the bundle's identifier (as the audit entry does).</summary>
    public const string BundleHeader = "Export-Bundle";

    public static IEndpointRouteBuilder MapExports(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/exports", ExportAsync)
            .RequiresAction(ProxyAction.Export)
            .WithTags("Export")
            .Accepts<ExportRequest>("application/json")
            .Produces(StatusCodes.Status200OK, contentType: BundleMediaType)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .WithSummary("Export records to a recipient as an encrypted, signed bundle")
            .WithDescription("The body names the recipient's member certificate (PEM, EC P-256, issued by this federation's CA and not revoked) and either records (handles) or study (a Study Instance UID, in the caller's view). Each record is sent in the view the policy gives it (research: de-identified), under a fresh content key wrapped to the recipient's key; the proxy signs the bundle. Open it with 'tproxy open'.");
        return app;
    }

    private static async Task<IResult> ExportAsync(
        ExportRequest request, HttpContext context, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, ClientCertificateValidator validator,
        ExportSigner signer, AuditLog audit, IOptions<ExportOptions> options, IOptions<PolicyOptions> policy, TimeProvider time)
    {
        var (recipient, invalid) = Recipient(request.Recipient, validator);
        if (recipient is null)
        {
            return invalid!;
        }

        using (recipient)
        {
            var (records, refusal) = await FindAsync(request, context, index, views, pseudonymizer, options.Value, policy.Value);
            if (refusal is not null)
            {
                return refusal;
            }

            // The sizes as stored: a de-identified view differs a little, and the writer counts it as it streams.
            if (records.FirstOrDefault(r => r.Entry.PlaintextLength > options.Value.MaxRecordBytes) is { } large)
            {
                return Problem.Result(ProblemTypes.ExportTooLarge, $"record {large.Entry.Handle} is larger than the {options.Value.MaxRecordBytes} bytes an export carries for one record (TrustedProxy:Export:MaxRecordBytes)");
            }

            if (records.Sum(r => r.Entry.PlaintextLength) > options.Value.MaxBundleBytes)
            {
                return Problem.Result(ProblemTypes.ExportTooLarge, $"the records add up to more than the {options.Value.MaxBundleBytes} bytes one export carries (TrustedProxy:Export:MaxBundleBytes); export them in parts");
            }

            foreach (var record in records)
            {
                await views.CheckAsync(record.Entry, record.Decision.Obligations, context.RequestAborted);
            }

            var feature = context.Proxy();
            var set = records.Select(r => (r.Entry, views.ViewName(r.Decision.Obligations.View, r.Decision.Obligations))).ToList();
            var response = context.Response;
            using var writer = ExportBundleWriter.Create(response.Body, recipient, signer, records.Count, options.Value);
            var bundleId = Convert.ToHexStringLower(writer.BundleId);
            await audit.AppendAsync(AuditEvents.Export(
                bundleId, CertificateSerial.Of(recipient.Certificate), Organisation(recipient.Certificate), Convert.ToHexStringLower(recipient.KeyId), feature.RequestId, set));

            response.ContentType = BundleMediaType;
            response.Headers[BundleHeader] = bundleId;
            response.Headers.ContentDisposition = $"attachment; filename=\"export-{bundleId}.tpxe\"";
            using var prefetch = await views.PrefetchAsync(records.Select(r => r.Entry).ToList(), context.RequestAborted);
            await writer.WriteHeaderAsync(time.GetUtcNow(), context.RequestAborted);

            // One record at a time: opened (read, verified, restored, viewed, audited), streamed
            // through its content key, let go. A failure past the first byte aborts the response,
            // and a bundle without its signature is refused by every reader.
            for (var i = 0; i < records.Count; i++)
            {
                using var viewed = await views.OpenAsync(records[i].Entry, records[i].Decision.Obligations, feature.Egress, context.RequestAborted);
                await using var sealing = await writer.BeginRecordAsync(records[i].Entry.Handle, views.ViewName(viewed.View, records[i].Decision.Obligations), context.RequestAborted);
                await viewed.CopyToAsync(sealing, context.RequestAborted);
                await sealing.CompleteAsync(context.RequestAborted);
            }

            await writer.CompleteAsync(context.RequestAborted);
            return TypedResults.Empty;
        }
    }

    /// <summary>The recipient: a current member certificate of this federation with an EC P-256 key.</summary>
    private static (ExportRecipient? Recipient, IResult? Refusal) Recipient(string? pem, ClientCertificateValidator validator)
    {
        if (string.IsNullOrWhiteSpace(pem))
        {
            return (null, Problem.Result(ProblemTypes.InvalidRecipient, "name the recipient's member certificate (PEM) in 'recipient'"));
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(pem);
        }
        catch (CryptographicException)
        {
            return (null, Problem.Result(ProblemTypes.InvalidRecipient, "'recipient' is not a PEM certificate"));
        }

        var check = validator.Validate(certificate);
        if (!check.Accepted)
        {
            certificate.Dispose();
            return (null, Problem.Result(ProblemTypes.InvalidRecipient, $"the recipient certificate is not a current member certificate of this federation: {check.Reason}"));
        }

        try
        {
            return (ExportRecipient.FromCertificate(certificate), null);
        }
        catch (ExportBundleException ex)
        {
            certificate.Dispose();
            return (null, Problem.Result(ProblemTypes.InvalidRecipient, ex.Message));
        }
    }

    private static string? Organisation(X509Certificate2 certificate) =>
        FederationIdentityExtension.TryRead(certificate, out var identity) ? identity?.Organisation : null;

    /// <summary>The records named, each through its record-level decision; or a study's, found as WADO-RS finds them.</summary>
    private static async Task<(IReadOnlyList<VisibleRecord> Records, IResult? Refusal)> FindAsync(
        ExportRequest request, HttpContext context, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, ExportOptions options, PolicyOptions policy)
    {
        var handles = request.Records ?? [];
        var study = RecordEndpoints.NullIfEmpty(request.Study);
        if ((handles.Count == 0) == (study is null))
        {
            return ([], Problem.Result(ProblemTypes.BadRequest, "name either 'records' (handles) or 'study' (a Study Instance UID)"));
        }

        if (handles.Count > options.MaxRecords)
        {
            return ([], Problem.Result(ProblemTypes.ExportTooLarge, $"an export carries at most {options.MaxRecords} records (TrustedProxy:Export:MaxRecords); {handles.Count} were named"));
        }

        if (handles.Count > 0)
        {
            if (handles.Distinct(StringComparer.Ordinal).Count() != handles.Count)
            {
                return ([], Problem.Result(ProblemTypes.BadRequest, "a record is named twice in 'records'"));
            }

            var found = new List<VisibleRecord>(handles.Count);
            foreach (var handle in handles)
            {
                var (record, refusal) = await RecordAccess.FindAsync(handle, context, index);
                if (record is null)
                {
                    return ([], refusal);
                }

                found.Add(record);
            }

            return (found, null);
        }

        var feature = context.Proxy();

        // One more than the limit is asked for: an export cut short without a word would look whole to its recipient.
        var query = RecordQueries.Create(feature, views, pseudonymizer, null, study, null, null) with { Limit = options.MaxRecords + 1 };
        var visible = await RecordAccess.SearchAsync(feature, query, index.SearchInstancesAsync, policy.MaxRecordsExamined, context.RequestAborted);
        if (visible.Records.Count > options.MaxRecords || visible.Truncated)
        {
            return ([], Problem.Result(ProblemTypes.ExportTooLarge, visible.Truncated
                ? $"the search stopped after examining {visible.Examined} records (TrustedProxy:Policy:MaxRecordsExamined) and the export would be incomplete; export the study by records"
                : $"the study has more than {options.MaxRecords} records you may export (TrustedProxy:Export:MaxRecords); export it by records"));
        }

        if (visible.Records.Count > 0)
        {
            return (visible.Records, null);
        }

        return ([], visible.FirstDenial is { } denial ? RecordAccess.Forbidden(denial) : Problem.Result(ProblemTypes.NotFound, "no records of that study exist"));
    }
}
