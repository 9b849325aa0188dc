using System.Globalization;
using BenchmarkDotNet.Attributes;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.Benchmarks;

/// <summary>
/// The compliance dashboard's queries on a decision log of <see cref="Decisions"/> rows (real
/// SQLite, the proxy's schema): 20 organisations, every role and action, one denial in ten, spread
/// over 30 days. A page of the log (newest, and filtered), a one-day period, and the summary report
/// for the whole month and for one day. No index on the decision time: periods scan.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
public class DecisionLogBenchmarks
{
    private static readonly DateTimeOffset Start = new(2025, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private string _directory = "";
    private DecisionLog _log = null!;

    [Params(1_000_000)]
    public int Decisions { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "tproxy-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var index = new RecordIndex(Path.Combine(_directory, "proxy.db"));
        using (var connection = index.Open())
        using (var transaction = connection.BeginTransaction())
        using (var insert = connection.CreateCommand())
        {
            insert.CommandText = "INSERT INTO decisions (at, certificate_serial, organisation, role, action, resource, permitted, rule, reason, request_id, request_tag) VALUES ($at, $serial, $organisation, $role, $action, $resource, $permitted, $rule, 'reason', $request, $tag)";
            var at = insert.Parameters.Add("$at", Microsoft.Data.Sqlite.SqliteType.Text);
            var serial = insert.Parameters.Add("$serial", Microsoft.Data.Sqlite.SqliteType.Text);
            var organisation = insert.Parameters.Add("$organisation", Microsoft.Data.Sqlite.SqliteType.Text);
            var role = insert.Parameters.Add("$role", Microsoft.Data.Sqlite.SqliteType.Text);
            var action = insert.Parameters.Add("$action", Microsoft.Data.Sqlite.SqliteType.Text);
            var resource = insert.Parameters.Add("$resource", Microsoft.Data.Sqlite.SqliteType.Text);
            var permitted = insert.Parameters.Add("$permitted", Microsoft.Data.Sqlite.SqliteType.Integer);
            var rule = insert.Parameters.Add("$rule", Microsoft.Data.Sqlite.SqliteType.Text);
            var request = insert.Parameters.Add("$request", Microsoft.Data.Sqlite.SqliteType.Text);
            var tag = insert.Parameters.Add("$tag", Microsoft.Data.Sqlite.SqliteType.Text);
            var actions = Enum.GetNames<ProxyAction>();
            var step = TimeSpan.FromDays(30) / Decisions;
            for (var i = 0; i < Decisions; i++)
            {
                var denied = i % 10 == 0;
                at.Value = (Start + (step * i)).UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
                serial.Value = (i % 97).ToString("X8", CultureInfo.InvariantCulture);
                organisation.Value = $"Hospital {i % 20:D2}";
                role.Value = ProxyRoles.Names[i % 4];
                action.Value = actions[i % actions.Length];
                resource.Value = "GET /api/v1/records/{handle}/content";
                permitted.Value = denied ? 0 : 1;
                rule.Value = denied ? "default-deny" : "consumer-read";
                request.Value = i.ToString("x32", CultureInfo.InvariantCulture);
                tag.Value = i.ToString("x16", CultureInfo.InvariantCulture);
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
        }

        _log = new DecisionLog(index);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "log: newest page of 50")]
    public Task<DecisionPage> NewestPage() => _log.SearchAsync(new DecisionFilter(), 50);

    [Benchmark(Description = "log: one organisation's denials, page of 50")]
    public Task<DecisionPage> OrganisationDenials() => _log.SearchAsync(new DecisionFilter { Organisation = "Hospital 07", Permitted = false }, 50);

    [Benchmark(Description = "log: one day, page of 50")]
    public Task<DecisionPage> OneDay() => _log.SearchAsync(new DecisionFilter { From = Start.AddDays(14), Until = Start.AddDays(15) }, 50);

    [Benchmark(Description = "report: 30 days, all institutions")]
    public Task<IReadOnlyList<DecisionSummary>> MonthReport() => _log.SummarizeAsync(Start, Start.AddDays(30));

    [Benchmark(Description = "report: one day, one institution")]
    public Task<IReadOnlyList<DecisionSummary>> DayReport() => _log.SummarizeAsync(Start.AddDays(14), Start.AddDays(15), "Hospital 07");
}
