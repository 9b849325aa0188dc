using TrustedProxy.Audit;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Audit;

/// <summary>
/// The tamper-evident audit log for compliance officers: a fresh signed checkpoint to keep
/// elsewhere, the public key to check checkpoints with, the verdict of verifying the log now, and
/// the log itself to verify offline (<c>tproxy audit verify --log … --public-key … --checkpoint …</c>).
/// </summary>
internal static class AuditLogEndpoints
{
    public static IEndpointRouteBuilder MapAuditLog(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/api/v1/audit").WithTags("Audit");
        audit.MapGet("/checkpoint", async (AuditLog log) => await log.CheckpointAsync() is { } checkpoint
                ? Results.Ok(checkpoint)
                : Problem.Result(ProblemTypes.NotFound, "the audit log is empty"))
            .RequiresAction(ProxyAction.Audit)
            .Produces<AuditCheckpoint>()
            .WithSummary("A checkpoint signed now over the whole audit log (this request's decision included); keep it elsewhere to detect a rollback later");
        audit.MapGet("/public-key", (AuditLog log) => TypedResults.Text(string.Concat(log.Keys.Select(k => k.Pem)), "application/x-pem-file"))
            .RequiresAction(ProxyAction.Audit)
            .WithSummary("The audit keys' public halves (PEM, ECDSA P-256), first to current: the first is what a verifier pins; the log hands over to the others, and old checkpoints verify with them");
        audit.MapGet("/verification", async (AuditLog log) => TypedResults.Ok(await Task.Run(log.Verify)))
            .RequiresAction(ProxyAction.Audit)
            .Produces<AuditVerification>()
            .WithSummary("Verifies the audit log now: every entry's hash, the chain, every checkpoint's signature and root, the latest checkpoint file");
        audit.MapGet("/log", DownloadAsync)
            .RequiresAction(ProxyAction.Audit)
            .Produces(StatusCodes.Status200OK, contentType: LogMediaType)
            .WithSummary("The audit log as it stands (JSON lines), to verify offline");
        return app;
    }

    public const string LogMediaType = "application/x-ndjson";

    private static async Task DownloadAsync(HttpContext context, AuditLog log)
    {
        var (length, _, _) = AuditLog.Snapshot(log.Paths, log.Options);
        context.Response.ContentType = LogMediaType;
        context.Response.ContentLength = length;
        context.Response.Headers.ContentDisposition = "attachment; filename=\"audit.log\"";
        await using var file = AuditVerifier.OpenShared(log.Paths.Log);
        var buffer = new byte[1 << 16];
        for (var left = length; left > 0;)
        {
            var read = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), context.RequestAborted);
            if (read == 0)
            {
                throw new AuditUnavailableException("the audit log became shorter while it was being read");
            }

            await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
            left -= read;
        }
    }
}
