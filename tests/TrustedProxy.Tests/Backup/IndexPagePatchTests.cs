using Microsoft.Data.Sqlite;
using TrustedProxy.Backup;
using TrustedProxy.Testing;

namespace TrustedProxy.Tests.Backup;

/// <summary>
/// An increment's index as changed pages: copies taken with SQLite's backup API keep page numbers, so
/// a few rows changed are a few pages; the patch rebuilds the later copy byte for byte, through growth
/// and shrinking, and refuses a base it was not taken against.
/// </summary>
public sealed class IndexPagePatchTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void AFewRowsChanged_AreAFewPages_AndThePatchRebuildsTheLaterCopyByteForByte()
    {
        var live = Live();
        Execute(live, "CREATE TABLE records (handle TEXT PRIMARY KEY, body BLOB)");
        for (var i = 0; i < 2000; i++)
        {
            Execute(live, $"INSERT INTO records VALUES ('h{i:D5}', randomblob(200))");
        }

        var before = Copy(live, "before.db");
        Execute(live, "UPDATE records SET body = randomblob(200) WHERE handle IN ('h00010', 'h01500')");
        Execute(live, "INSERT INTO records VALUES ('h99999', randomblob(200))");
        var after = Copy(live, "after.db");

        var patch = Path.Combine(_directory.Path, "patch");
        var made = IndexPagePatch.Create(before, after, patch);
        Assert.True(made.PagesChanged is > 0 and < 10, $"{made.PagesChanged} pages changed of {made.PagesAfter}");
        Assert.True(made.Bytes * 20 < new FileInfo(after).Length, $"patch {made.Bytes} bytes, index {new FileInfo(after).Length}");

        var restored = Path.Combine(_directory.Path, "restored.db");
        File.Copy(before, restored);
        IndexPagePatch.Apply(patch, restored, "increment 0");
        Assert.Equal(File.ReadAllBytes(after), File.ReadAllBytes(restored));
    }

    [Fact]
    public void AnIndexThatGrewOrShrank_IsRebuiltToItsNewLength()
    {
        var live = Live();
        Execute(live, "CREATE TABLE records (handle TEXT PRIMARY KEY, body BLOB)");
        var small = Copy(live, "small.db");
        for (var i = 0; i < 500; i++)
        {
            Execute(live, $"INSERT INTO records VALUES ('h{i:D5}', randomblob(1000))");
        }

        var large = Copy(live, "large.db");
        Execute(live, "DELETE FROM records WHERE handle > 'h00100'");
        Execute(live, "VACUUM");
        var shrunk = Copy(live, "shrunk.db");
        Assert.True(new FileInfo(shrunk).Length < new FileInfo(large).Length);

        var restored = Path.Combine(_directory.Path, "restored.db");
        File.Copy(small, restored);
        foreach (var (from, to, name) in new[] { (small, large, "grow"), (large, shrunk, "shrink") })
        {
            var patch = Path.Combine(_directory.Path, name);
            IndexPagePatch.Create(from, to, patch);
            IndexPagePatch.Apply(patch, restored, name);
            Assert.Equal(File.ReadAllBytes(to), File.ReadAllBytes(restored));
        }

        Assert.Equal(101L, Count(restored));
    }

    [Fact]
    public void APatchAppliedToAnotherIndexThanItsBase_IsRefusedWithTheReason_AndTheIndexIsLeftAsItWas()
    {
        var live = Live();
        Execute(live, "CREATE TABLE records (handle TEXT PRIMARY KEY)");
        var first = Copy(live, "first.db");
        Execute(live, "INSERT INTO records VALUES ('a')");
        var second = Copy(live, "second.db");
        Execute(live, "INSERT INTO records VALUES ('b')");
        var third = Copy(live, "third.db");

        var patch = Path.Combine(_directory.Path, "patch");
        IndexPagePatch.Create(second, third, patch);
        var wrong = Path.Combine(_directory.Path, "wrong.db");
        File.Copy(first, wrong);
        var untouched = File.ReadAllBytes(wrong);

        var refused = Assert.Throws<BackupIntegrityException>(() => IndexPagePatch.Apply(patch, wrong, "increment 3 of generation 1"));
        Assert.Equal("increment 3 of generation 1: the index page patch was taken against another index than the one restored before it", refused.Message);
        Assert.Equal(untouched, File.ReadAllBytes(wrong));

        // A truncated patch is named as such before anything is written.
        var bytes = File.ReadAllBytes(patch);
        File.WriteAllBytes(patch, bytes[..^10]);
        File.Copy(second, wrong, overwrite: true);
        var cut = Assert.Throws<BackupIntegrityException>(() => IndexPagePatch.Apply(patch, wrong, "increment 3"));
        Assert.Contains("header does not describe its contents", cut.Message);
        Assert.Equal(File.ReadAllBytes(second), File.ReadAllBytes(wrong));
    }

    private string Live()
    {
        var path = Path.Combine(_directory.Path, "live.db");
        Execute(path, "PRAGMA journal_mode=WAL");
        return path;
    }

    // As the snapshot taker copies the live index: the backup API, page for page, then a rollback journal.
    private string Copy(string live, string name)
    {
        var copy = Path.Combine(_directory.Path, name);
        using var source = Open(live);
        using var destination = Open(copy);
        source.BackupDatabase(destination);
        using var journal = destination.CreateCommand();
        journal.CommandText = "PRAGMA journal_mode=DELETE";
        journal.ExecuteScalar();
        return copy;
    }

    private static long Count(string database)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM records";
        return (long)command.ExecuteScalar()!;
    }

    private static void Execute(string database, string sql)
    {
        using var connection = Open(database);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static SqliteConnection Open(string database)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public void Dispose() => _directory.Dispose();
}
