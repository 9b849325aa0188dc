using System.IO.Pipelines;
using Microsoft.Extensions.Options;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Rendering;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Records;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>
/// WADO-RS (PS3.18 10.4): instances of a study, series or single instance as multipart/related
/// application/dicom, bit-exact in the original view or de-identified; their metadata as DICOM JSON;
/// and an instance's frame rendered as PNG. Instances are sent in their stored transfer syntax
/// (no transcoding); a request for another one gets 406.
/// </summary>
internal static class WadoRs
{
    // Retrieve entries written to the audit log together, ahead of the instances they name: one
    // fsync for this many instances of a study, and at most this many entries for copies that a
    // failed response did not send (entries say what the proxy was about to do; docs/audit-log.md).
    private const int AuditAheadBatch = 64;

    public static async Task<IResult> RetrieveAsync(HttpContext context, string study, string? series, string? instance, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy)
    {
        // Only DICOM parts are sent: a multipart/related that asks for other parts (bulk data as
        // application/octet-stream, rendered images) cannot be answered, and must not be answered
        // with DICOM parts the client did not ask for. No type parameter means application/dicom.
        var acceptable = MediaTypes.Accepts(context.Request, MediaTypes.MultipartRelated, out var candidates);
        var accepted = candidates.Where(a => a.Parameters.FirstOrDefault(p => p.Name.Equals("type", StringComparison.OrdinalIgnoreCase)) is not { } type
            || type.Value.ToString().Trim('"').Equals(MediaTypes.Dicom, StringComparison.OrdinalIgnoreCase)).ToList();
        if (!acceptable || (candidates.Count > 0 && accepted.Count == 0))
        {
            return Problem.Result(ProblemTypes.NotAcceptable, $"instances are sent as {MediaTypes.MultipartRelated}; type=\"{MediaTypes.Dicom}\"");
        }

        var (entries, refusal) = await FindAsync(context, study, series, instance, index, views, pseudonymizer, options, policy);
        if (refusal is not null)
        {
            return refusal;
        }

        var requestedSyntaxes = accepted.SelectMany(a => a.Parameters.Where(p => p.Name.Equals("transfer-syntax", StringComparison.OrdinalIgnoreCase)).Select(p => p.Value.ToString().Trim('"'))).ToList();
        if (requestedSyntaxes.Count > 0 && !requestedSyntaxes.Contains("*") && entries.Any(e => !requestedSyntaxes.Contains(e.Entry.TransferSyntaxUid)))
        {
            return Problem.Result(ProblemTypes.NotAcceptable, $"the instances are stored as {string.Join(", ", entries.Select(e => e.Entry.TransferSyntaxUid).Distinct())}; this proxy does not transcode (ask for transfer-syntax=*)");
        }

        // Every instance is checked (profile, eligibility) before the response starts, so that a
        // refusal is still a clean problem answer; then each is opened, verified, written and let go
        // in turn, the next one opened (read, verified, restored, audited) while this one is written,
        // so a study of thousands of instances holds two of them in memory at most (its cloud blocks
        // come as one read stream, announced here). A failure past the first byte (a broken seal, a
        // lost object) aborts the response: the multipart body stays unterminated.
        var feature = context.Proxy();
        foreach (var found in entries)
        {
            await views.CheckAsync(found.Entry, found.Decision.Obligations, context.RequestAborted);
        }

        // Whether each copy carries a fingerprint is said as the records API says it (header
        // Watermark), on each part; on the response too when it is one instance (a study's parts are
        // opened one after the other, after the response has started, so only they can say it).
        using var prefetch = await views.PrefetchAsync(entries.Select(e => e.Entry).ToList(), context.RequestAborted);

        // The retrieve entries go to the audit log ahead, a batch at a time with one fsync, the next
        // batch's while this one is sent; each is durable before its instance is opened, so before
        // its first byte leaves (a fingerprinted copy's entry, naming its mark, when it is made).
        var ahead = new AuditedAhead();
        Task AuditFrom(int first) => views.AuditAheadAsync(
            entries.Skip(first).Take(AuditAheadBatch).Select(e => (e.Entry, e.Decision.Obligations)).ToList(), feature.Egress, ahead);
        var audited = AuditFrom(0);
        async Task<ViewedRecord> Open(int i)
        {
            if (i % AuditAheadBatch == 0)
            {
                await audited;
                audited = i + AuditAheadBatch < entries.Count ? AuditFrom(i + AuditAheadBatch) : Task.CompletedTask;
            }

            return await views.OpenAsync(entries[i].Entry, entries[i].Decision.Obligations, feature.Egress, context.RequestAborted, ahead);
        }

        var writer = new MultipartRelatedWriter(context.Response.Body);
        context.Response.ContentType = writer.ContentType(MediaTypes.Dicom);
        Task<ViewedRecord>? next = Open(0);
        try
        {
            for (var i = 0; i < entries.Count; i++)
            {
                using var record = await next!;
                next = i + 1 < entries.Count ? Open(i + 1) : null;
                if (entries.Count == 1)
                {
                    context.Response.Headers[RecordEndpoints.WatermarkHeader] = record.Mark;
                }

                await writer.WritePartAsync(
                    $"{MediaTypes.Dicom}; transfer-syntax={record.Entry.TransferSyntaxUid}",
                    body => record.CopyToAsync(body, context.RequestAborted),
                    context.RequestAborted,
                    [(RecordEndpoints.WatermarkHeader, record.Mark)]);
            }
        }
        finally
        {
            // The response failed while the next instance was being opened: let that finish (or fail) before the request ends, and let go of what it holds.
            if (next is not null)
            {
                await next.ContinueWith(
                    static opened =>
                    {
                        if (opened.IsCompletedSuccessfully)
                        {
                            opened.Result.Dispose();
                        }
                    },
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }

            // A batch of entries still being written when the response failed: observed, not awaited.
            _ = audited.ContinueWith(static written => written.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        await writer.CompleteAsync(context.RequestAborted);
        return Results.Empty;
    }

    public static async Task<IResult> MetadataAsync(HttpContext context, string study, string? series, string? instance, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy)
    {
        var (entries, refusal) = await FindAsync(context, study, series, instance, index, views, pseudonymizer, options, policy);
        if (refusal is not null)
        {
            return refusal;
        }

        var datasets = new List<DicomDataset>();
        foreach (var found in entries)
        {
            datasets.Add(await views.MetadataAsync(found.Entry, found.Decision.Obligations, context.RequestAborted));
        }

        return Results.Bytes(DicomJsonWriter.ToJsonArray(datasets), MediaTypes.DicomJson);
    }

    /// <summary>
    /// One frame as an 8-bit windowed PNG. A copy the policy obliges to carry a fingerprint is not
    /// rendered: windowing to 8 bits destroys the reversible mark in the pixels, and a PNG has no
    /// place for the DICOM one, so the answer is 403 <c>fingerprint-required</c> naming the rule (the
    /// caller may retrieve the fingerprinted instance and render it itself). The instance is held in
    /// memory once, parsed as it is read (its pixel data must be whole to render), and only up to
    /// <c>TrustedProxy:Watermarking:MaxInMemoryBytes</c>, the bound under which the proxy holds any
    /// record in memory; larger ones get 406 <c>render-too-large</c>.
    /// </summary>
    public static async Task<IResult> RenderedAsync(HttpContext context, string study, string series, string instance, string? frames, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer, IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy, IOptions<DicomReaderLimits> limits, IOptions<WatermarkingOptions> watermarking)
    {
        if (!MediaTypes.Accepts(context.Request, "image/png", out _))
        {
            return Problem.Result(ProblemTypes.NotAcceptable, "frames are rendered as image/png");
        }

        var frame = 1;
        if (frames is not null && !int.TryParse(frames.Split(',')[0], out frame))
        {
            return Problem.Result(ProblemTypes.InvalidQuery, "frames is a comma-separated list of frame numbers from 1");
        }

        var (entries, refusal) = await FindAsync(context, study, series, instance, index, views, pseudonymizer, options, policy);
        if (refusal is not null)
        {
            return refusal;
        }

        var found = entries[0];
        if (found.Decision.Obligations.Fingerprint)
        {
            var rule = found.Decision.Explanation.Obligations?.FingerprintBy ?? found.Decision.Rule;
            return Problem.Result(ProblemTypes.FingerprintRequired,
                $"the policy requires every copy of this instance to carry a fingerprint (rule {rule}), which a rendered PNG cannot carry; retrieve the instance as {MediaTypes.Dicom}",
                new Dictionary<string, object?> { ["rule"] = rule });
        }

        if (found.Entry.PlaintextLength > watermarking.Value.MaxInMemoryBytes)
        {
            return Problem.Result(ProblemTypes.RenderTooLarge,
                $"the instance is {found.Entry.PlaintextLength} bytes, more than the {watermarking.Value.MaxInMemoryBytes} a render may hold in memory (TrustedProxy:Watermarking:MaxInMemoryBytes); retrieve it as {MediaTypes.Dicom}");
        }

        using var record = await views.OpenAsync(found.Entry, found.Decision.Obligations, egress: null, context.RequestAborted);
        var file = await ParseOnceAsync(record, limits.Value, context.RequestAborted);
        try
        {
            return Results.Bytes(DicomRenderer.RenderPng(file, frame), "image/png");
        }
        catch (RenderingNotSupportedException ex)
        {
            return Problem.Result(ProblemTypes.NotAcceptable, ex.Message);
        }
    }

    /// <summary>
    /// The copy parsed with one copy of its content in memory: where it was made in memory already
    /// (a sealed record restored, a de-identified copy), parsed in place; otherwise parsed from the
    /// stream as it is decrypted, through a pipe of a few segments, so no whole buffer precedes the parse.
    /// </summary>
    private static async Task<DicomFile> ParseOnceAsync(ViewedRecord record, DicomReaderLimits limits, CancellationToken cancellationToken)
    {
        if (record.InMemory is { Array: { } bytes } copy)
        {
            return (await DicomFile.ReadInPlaceAsync(bytes, copy.Count, limits, cancellationToken))?.File
                ?? await DicomFile.ReadAsync(new MemoryStream(bytes, 0, copy.Count, writable: false), limits, cancellationToken);
        }

        var pipe = new Pipe();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = Task.Run(async () =>
        {
            try
            {
                await using (var sink = pipe.Writer.AsStream(leaveOpen: true))
                {
                    await record.CopyToAsync(sink, stop.Token);
                }

                await pipe.Writer.CompleteAsync();
            }
            catch (Exception ex)
            {
                // The reader sees the failure (a broken seal, a lost object) in place of the end of the stream.
                await pipe.Writer.CompleteAsync(ex);
            }
        }, CancellationToken.None);
        try
        {
            await using var source = pipe.Reader.AsStream(leaveOpen: true);
            return await DicomFile.ReadAsync(source, limits, cancellationToken);
        }
        finally
        {
            // A parse that stops early (a limit, a malformed file) stops the producer and releases its pending write.
            await stop.CancelAsync();
            await pipe.Reader.CompleteAsync();
            await producer;
        }
    }

    // The instances the caller may see; when every match is withheld, 403 with the rule; when none matches, 404.
    private static async Task<(IReadOnlyList<VisibleRecord> Records, IResult? Refusal)> FindAsync(
        HttpContext context, string study, string? series, string? instance, RecordIndex index, RecordViews views, IdentifierPseudonymizer pseudonymizer,
        IOptions<RecordStoreOptions> options, IOptions<PolicyOptions> policy)
    {
        var feature = context.Proxy();
        // One more than the limit is asked for: a study cut short without a word would look whole to a PACS.
        var most = options.Value.MaxRetrieveInstances;
        var query = RecordQueries.Create(feature, views, pseudonymizer, null, study, series, instance) with { Limit = most + 1 };
        var visible = await RecordAccess.SearchAsync(feature, query, index.SearchInstancesAsync, policy.Value.MaxRecordsExamined, context.RequestAborted);
        if (visible.Records.Count > most || visible.Truncated)
        {
            return ([], Problem.Result(ProblemTypes.RetrieveTooLarge, visible.Truncated
                ? $"the retrieval stopped after examining {visible.Examined} records (TrustedProxy:Policy:MaxRecordsExamined) and would be incomplete; retrieve it series by series"
                : $"the {(series is null ? "study" : "series")} has more than {most} instances you may see (TrustedProxy:Records:MaxRetrieveInstances); retrieve it series by series"));
        }

        if (visible.Records.Count > 0)
        {
            return (visible.Records, null);
        }

        return ([], visible.FirstDenial is { } denial
            ? RecordAccess.Forbidden(denial)
            : Problem.Result(ProblemTypes.NotFound, instance is null ? "no matching instances exist" : "no such instance exists"));
    }
}
