using TrustedProxy.Audit;

namespace TrustedProxy.Tests.Audit;

/// <summary>
/// Real failures, as they happen on a real machine and hold when the tests run as root (who
/// ignores file modes): a full disk (/dev/full), the log's path taken by a directory, the log's
/// directory replaced by a file. Every append fails, nothing is recorded, and the log recovers.
/// </summary>
public sealed class AuditFailClosedTests : IDisposable
{
    private readonly AuditTestLog _log = new();

    [Fact]
    public async Task AFullDisk_FailsTheAppend_WithNoSpaceLeft_AndRecordsNothing()
    {
        Directory.CreateDirectory(_log.Paths.Directory);
        File.CreateSymbolicLink(_log.Paths.Log, "/dev/full");
        await using var log = _log.Open();

        var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditTestLog.Event("a", 0)));

        Assert.Contains("No space left on device", refused.Message);
        Assert.Equal(0, log.Count);
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditTestLog.Event("a", 1)));
        Assert.Equal(0, log.Count);
        Assert.False(File.Exists(_log.Paths.Checkpoint));
    }

    [Fact]
    public async Task TheLogsPathTakenByADirectory_FailsEveryAppend()
    {
        await using var log = _log.Open();
        await AuditTestLog.AppendAsync(log, 3, "a");
        File.Move(_log.Paths.Log, _log.Paths.Log + ".aside");
        Directory.CreateDirectory(_log.Paths.Log);

        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditTestLog.Event("a", 3)));

        Assert.Equal(3, log.Count);
        Directory.Delete(_log.Paths.Log);
        File.Move(_log.Paths.Log + ".aside", _log.Paths.Log);
        Assert.Equal(3, await log.AppendAsync(AuditTestLog.Event("a", 3)));
    }

    [Fact]
    public async Task TheAuditDirectoryReplacedByAFile_FailsEveryAppend_UntilItIsBack()
    {
        await using (var log = _log.Open())
        {
            await AuditTestLog.AppendAsync(log, 3, "a");
            var aside = _log.Paths.Directory + ".aside";
            Directory.Move(_log.Paths.Directory, aside);
            File.WriteAllText(_log.Paths.Directory, "not a directory");

            var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditTestLog.Event("a", 3)));
            Assert.Contains("Not a directory", refused.Message);
            await Assert.ThrowsAsync<AuditUnavailableException>(() => log.CheckpointAsync());

            File.Delete(_log.Paths.Directory);
            Directory.Move(aside, _log.Paths.Directory);
            Assert.Equal(3, await log.AppendAsync(AuditTestLog.Event("a", 3)));
        }

        Assert.True(_log.Verify().Intact);
    }

    [Fact]
    public async Task ALogTruncatedBehindTheWritersBack_IsNotExtended()
    {
        await using var log = _log.Open();
        await AuditTestLog.AppendAsync(log, 4, "a");
        _log.WriteLines(_log.Lines().Take(2));

        var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditTestLog.Event("a", 4)));

        Assert.Contains("truncated or replaced behind its back", refused.Message);
    }

    public void Dispose() => _log.Dispose();
}
