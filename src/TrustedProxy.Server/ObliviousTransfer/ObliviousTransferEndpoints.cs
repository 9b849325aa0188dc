using Microsoft.Extensions.Options;
using TrustedProxy.Client;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Records;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.ObliviousTransfer;

/// <summary>
/// Oblivious transfer to consumers: the consumer names a set of N records it may see and how many
/// (k) it will take; the proxy offers them under the k-out-of-N protocol of docs/oblivious-transfer.md,
/// then answers the consumer's choice with every record of the set, each under its own key, of which
/// the consumer can open exactly the k it chose. The proxy never learns which.
/// </summary>
internal static class ObliviousTransferEndpoints
{
    public static IEndpointRouteBuilder MapObliviousTransfer(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/oblivious").WithTags("Oblivious transfer");
        group.MapPost("/offers", OfferAsync)
            .RequiresAction(ProxyAction.RetrieveOblivious)
            .Accepts<ObliviousOfferRequest>("application/json")
            .Produces<ObliviousOffer>(StatusCodes.Status201Created)
            .WithSummary("Offer a set of records for a k-out-of-N oblivious transfer");
        group.MapPost("/offers/{sessionId}/choice", ChoiceAsync)
            .RequiresAction(ProxyAction.RetrieveOblivious)
            .Accepts<Stream>("application/octet-stream")
            .Produces(StatusCodes.Status200OK, contentType: OtTransferStream.MediaType)
            .WithSummary("Answer the consumer's choice with the whole set, each record under its own key");
        return app;
    }

    private static async Task<IResult> OfferAsync(
        ObliviousOfferRequest? request, HttpContext context, RecordIndex index, RecordViews views, OtSessions sessions,
        PolicyEnforcer enforcer, RecordWatermarks watermarks, IOptions<ObliviousTransferOptions> options, TimeProvider time)
    {
        var limits = options.Value;
        if (request?.Handles is not { Count: > 0 } handles || handles.Count > limits.MaxSetSize || handles.Distinct(StringComparer.Ordinal).Count() != handles.Count)
        {
            return Problem.Result(ProblemTypes.BadRequest, $"name 1 to {limits.MaxSetSize} distinct record handles");
        }

        if (request.Choices < 1 || request.Choices > handles.Count)
        {
            return Problem.Result(ProblemTypes.BadRequest, $"choices must be from 1 to the {handles.Count} records offered");
        }

        var records = new List<RecordEntry>();
        foreach (var handle in handles)
        {
            if (!RecordHandle.IsWellFormed(handle) || await index.FindAsync(handle) is not { IsAvailable: true } entry)
            {
                return RecordAccess.NotFound(handle);
            }

            records.Add(entry);
        }

        // Every record of the set is decided; one withheld refuses the offer (the proxy must be able to hand over any of them).
        var feature = context.Proxy();
        var decided = await feature.AuthorizeAsync(records, context.RequestAborted);
        if (decided.FirstOrDefault(d => !d.Permitted) is { } denial)
        {
            return RecordAccess.Forbidden(denial);
        }

        var smallest = decided.Append(feature.Decision).MaxBy(d => d.Obligations.MinObliviousSet)!;
        if (records.Count < smallest.Obligations.MinObliviousSet)
        {
            var rule = smallest.Explanation.Obligations?.MinObliviousSetBy ?? smallest.Rule;
            return Problem.Result(ProblemTypes.ObliviousSetTooSmall,
                $"the policy asks for at least {smallest.Obligations.MinObliviousSet} records in an oblivious transfer (rule {rule}); this offer names {records.Count}",
                new Dictionary<string, object?> { ["rule"] = rule, ["minObliviousSet"] = smallest.Obligations.MinObliviousSet });
        }

        if (records.Sum(r => r.PlaintextLength) > limits.MaxTransferBytes)
        {
            return Problem.Result(ProblemTypes.PayloadTooLarge, $"the set holds more than the {limits.MaxTransferBytes} bytes one transfer may carry");
        }

        var sender = new OtSender(records.Count, request.Choices);
        var sessionId = Convert.ToHexStringLower(sender.Offer.SessionId);
        var offeredAt = time.GetUtcNow();
        var obligations = decided.Select(d => d.Obligations).ToList();
        var session = new OtSession(sender, records, OtSessions.NewMessageKeys(records.Count), feature.Identity.CertificateSerial, obligations, offeredAt.AddSeconds(limits.OfferSeconds), new EgressMark(feature.Identity.Organisation, sessionId, offeredAt));
        if (!sessions.TryAdd(sessionId, session))
        {
            return Problem.Result(ProblemTypes.TooManyOffers, "too many oblivious transfers are waiting for a choice; try again shortly");
        }

        // The audit log and the decision log hold the set and k: which records were offered, never
        // which were taken. Every record of the set is fingerprinted under the session id, recorded
        // here with its tag.
        await enforcer.RecordAsync(
            [(feature.Request with { Resource = $"{DecisionLog.ObliviousOfferResourcePrefix}{sessionId}: {request.Choices} of {records.Count} records [{string.Join(",", records.Select(r => r.Handle))}]", Time = offeredAt }, feature.Decision)],
            new RequestMark(sessionId, watermarks.RequestTag(sessionId)));

        var described = new List<ObliviousOfferRecord>();
        for (var i = 0; i < records.Count; i++)
        {
            var description = await views.DescribeAsync(records[i], obligations[i], context.RequestAborted);
            described.Add(new ObliviousOfferRecord(i, records[i].Handle, description.SopInstanceUid, description.Length));
        }

        return TypedResults.Created($"/api/v1/oblivious/offers/{sessionId}", new ObliviousOffer(sessionId, Convert.ToBase64String(sender.Offer.ToBytes()), request.Choices, described));
    }

    private static async Task<IResult> ChoiceAsync(string sessionId, HttpContext context, RecordViews views, OtSessions sessions)
    {
        var feature = context.Proxy();
        if (sessions.Take(sessionId, feature.Identity.CertificateSerial) is not { } session)
        {
            return Problem.Result(ProblemTypes.OfferNotFound, "no open offer of that id for this certificate (offers are answered once and expire)");
        }

        // A choice is small and of known length; read one byte more than that to catch a longer body.
        var expected = OtProtocol.SessionIdBytes + (session.Sender.Offer.Choices * OtProtocol.PointBytes);
        using var body = new MemoryStream();
        var buffer = new byte[Math.Min(expected + 1, 1 << 16)];
        int n;
        while (body.Length <= expected && (n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
        {
            body.Write(buffer, 0, n);
        }

        byte[] answer;
        try
        {
            answer = session.Sender.Answer(OtChoice.Parse(body.ToArray(), session.Sender.Offer.Choices), session.MessageKeys);
        }
        catch (OtProtocolException ex)
        {
            return Problem.Result(ProblemTypes.InvalidOtMessage, ex.Message);
        }

        // The records are decided again: the policy may have changed since the offer.
        var decided = await feature.AuthorizeAsync(session.Records, context.RequestAborted);
        if (decided.FirstOrDefault(d => !d.Permitted) is { } denial)
        {
            return RecordAccess.Forbidden(denial);
        }

        // Every record is read (and verified) before the first byte goes out, so a failure is a
        // clean problem response rather than a truncated transfer. The proxy does not know which
        // records the consumer takes, so every one is fingerprinted (as the policy says) before it
        // goes under its message key, for the consumer and the session.
        using var prefetch = await views.PrefetchAsync(session.Records, context.RequestAborted);
        var plaintexts = new List<byte[]>();
        for (var i = 0; i < session.Records.Count; i++)
        {
            // The stricter of the offer's and today's obligations: a fingerprint or de-identification due at either is carried out.
            var obligations = Stricter(session.Obligations[i], decided[i].Obligations);
            using var record = await views.OpenAsync(session.Records[i], obligations, session.Egress, context.RequestAborted);
            using var plaintext = new MemoryStream();
            await record.CopyToAsync(plaintext, context.RequestAborted);
            plaintexts.Add(plaintext.ToArray());
        }

        context.Response.ContentType = OtTransferStream.MediaType;
        await OtTransferStream.WriteHeaderAsync(context.Response.Body, session.Records.Count, session.Sender.Offer.Choices, answer, context.RequestAborted);
        for (var j = 0; j < plaintexts.Count; j++)
        {
            await OtTransferStream.WriteRecordAsync(context.Response.Body, session.MessageKeys[j], session.Sender.Offer.SessionId, j, plaintexts[j], context.RequestAborted);
        }

        return TypedResults.Empty;
    }

    private static PolicyObligations Stricter(PolicyObligations offered, PolicyObligations now) =>
        offered.View == RecordView.Deidentified || now.View == RecordView.Original
            ? offered with { Fingerprint = offered.Fingerprint || now.Fingerprint }
            : now with { Fingerprint = offered.Fingerprint || now.Fingerprint };
}
