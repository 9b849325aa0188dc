using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Records;

/// <summary>The administrators' handle on the object-format migration (docs/encryption-format.md): start a run, follow it.</summary>
internal static class ObjectFormatEndpoints
{
    public const string Path = "/api/v1/admin/object-format/migrate";

    public static IEndpointRouteBuilder MapObjectFormat(this IEndpointRouteBuilder app)
    {
        var migration = app.MapGroup(Path).WithTags("Maintenance");
        migration.MapPost("/", StartAsync)
            .RequiresAction(ProxyAction.Maintain)
            .Produces<ObjectFormatMigrationProgress>(StatusCodes.Status202Accepted)
            .WithSummary("Move every record still stored in the format of before index v7 to masked objects")
            .WithDescription("Reads each such record through the ordinary read path and relocates it through the upload cache, one at a time at TrustedProxy:ObjectFormat:MigrationRecordsPerHour. Answers 202 with the progress; asking again while a run goes on changes nothing. 409 when the upload cache is off.");
        migration.MapGet("/", StatusAsync)
            .RequiresAction(ProxyAction.Maintain)
            .Produces<ObjectFormatMigrationProgress>()
            .WithSummary("The object-format migration's progress: legacy records left, moved and failed in this run");
        return app;
    }

    private static async Task<IResult> StartAsync(ObjectFormatMigration migration)
    {
        if (!migration.Available)
        {
            return Problem.Result(ProblemTypes.MigrationUnavailable, "the migration moves records through the upload cache's schedule, and TrustedProxy:UploadCache:Enabled is false");
        }

        return TypedResults.Accepted(Path, ToProgress(await migration.StartAsync()));
    }

    private static async Task<IResult> StatusAsync(ObjectFormatMigration migration) => TypedResults.Ok(ToProgress(await migration.StatusAsync()));

    private static ObjectFormatMigrationProgress ToProgress(ObjectFormatMigrationStatus s) =>
        new(s.Running, s.LegacyRecords, s.Migrated, s.Failed, s.StartedAt, s.FinishedAt, s.RecordsPerHour);
}
