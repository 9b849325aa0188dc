using System.Text.RegularExpressions;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>
/// Key escrow with the real tproxy executable: <c>init</c> deals the new master key to custodians,
/// <c>keys split</c> deals it again, <c>keys verify-shares</c> checks a set. Every refusal is one
/// line on standard error, a non-zero exit, and no file created or changed anywhere.
/// </summary>
public sealed class KeyEscrowCliTests : IAsyncLifetime
{
    private readonly TemporaryDirectory _site = new();
    private readonly TemporaryDirectory _otherSite = new();

    private string Shares => Path.Combine(_site.Path, "key-shares");

    public async Task InitializeAsync()
    {
        var init = await CliProcess.RunAsync(_site.Path, "init");
        Assert.True(init.ExitCode == 0, init.Error);
    }

    [Fact]
    public async Task Init_DealsFiveOwnerOnlySharesOfTheNewMasterKey_RecordsTheSplit_AndAReRunDealsNone()
    {
        var files = ShareFiles(Shares);
        Assert.Equal(5, files.Length);
        var masterKey = File.ReadAllText(Path.Combine(_site.Path, "data", "keys", "master.key")).Trim();
        foreach (var file in files)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            Assert.DoesNotContain(masterKey, File.ReadAllText(file));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Shares));
        var split = SplitOf(files[0]);
        var audit = File.ReadAllText(Path.Combine(_site.Path, "data", "audit", "audit.log"));
        Assert.Contains($"\"kind\":\"key-split\"", audit);
        Assert.Contains($"\"split\":\"{split}\",\"threshold\":3,\"shares\":5", audit);

        var again = await CliProcess.RunAsync(_site.Path, "init");
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Contains("kept master key", again.Output);
        Assert.Equal(files, ShareFiles(Shares));
    }

    [Fact]
    public async Task VerifyShares_WithAnyThree_SaysTheyRecoverThisInstallationsKey_AndOnAFreshMachineNamesTheInstallation()
    {
        var files = ShareFiles(Shares);
        var split = SplitOf(files[0]);

        var (exitCode, output, error) = await CliProcess.RunAsync(_site.Path, "keys", "verify-shares", "--share", files[4], "--share", files[1], "--share", files[2]);

        Assert.True(exitCode == 0, error);
        Assert.Matches($"^3 shares of split {split}, threshold 3: they recover this installation's master key \\([0-9a-f]{{32}}\\)$", output.Trim());

        // A custodian's laptop: no data directory, only the shares.
        var fresh = await CliProcess.RunAsync(_otherSite.Path, "keys", "verify-shares", "--share", files[0], "--share", files[1], "--share", files[3]);
        Assert.True(fresh.ExitCode == 0, fresh.Error);
        Assert.Matches($"^3 shares of split {split}, threshold 3: they recover the master key of installation [0-9a-f]{{32}} \\(no master key here to compare with\\)$", fresh.Output.Trim());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_otherSite.Path));
    }

    [Fact]
    public async Task KeysSplit_DealsANewSplitWithTheGivenParameters_WhoseSharesDoNotMixWithTheFirst()
    {
        var elsewhere = Path.Combine(_otherSite.Path, "custodians");
        var (exitCode, output, error) = await CliProcess.RunAsync(_site.Path, "keys", "split", "--shares", "3", "--threshold", "2", "--out", elsewhere);

        Assert.True(exitCode == 0, error);
        var files = ShareFiles(elsewhere);
        Assert.Equal(3, files.Length);
        Assert.Contains("any 2 of these 3 shares rebuild the master key", output);
        Assert.All(files, f => Assert.Contains(f, output));

        var two = await CliProcess.RunAsync(_site.Path, "keys", "verify-shares", "--share", files[0], "--share", files[2]);
        Assert.True(two.ExitCode == 0, two.Error);
        Assert.StartsWith($"2 shares of split {SplitOf(files[0])}, threshold 2: they recover this installation's master key", two.Output);

        var first = ShareFiles(Shares);
        await AssertRefusedAsync(_site.Path, $"'{files[1]}' is of split {SplitOf(files[1])}, '{first[0]}' of split {SplitOf(first[0])}: shares of different splits do not combine; bring 3 shares of one split",
            "keys", "verify-shares", "--share", first[0], "--share", first[1], "--share", files[1]);
    }

    [Fact]
    public async Task VerifyShares_WithTwoOfThree_IsRefused()
    {
        var files = ShareFiles(Shares);

        await AssertRefusedAsync(_site.Path, $"2 shares of split {SplitOf(files[0])} given, and it takes 3: 1 more needed",
            "keys", "verify-shares", "--share", files[0], "--share", files[1]);
    }

    [Fact]
    public async Task VerifyShares_WithAShareOfAnotherInstallation_IsRefused()
    {
        var other = await CliProcess.RunAsync(_otherSite.Path, "init", "--shares", "3", "--threshold", "3");
        Assert.True(other.ExitCode == 0, other.Error);
        var ours = ShareFiles(Shares);
        var theirs = ShareFiles(Path.Combine(_otherSite.Path, "key-shares"));

        var error = await AssertRefusedAsync(_site.Path, null, "keys", "verify-shares", "--share", ours[0], "--share", ours[1], "--share", theirs[0]);
        Assert.Matches($"^'{Regex.Escape(theirs[0])}' is a share of another installation \\([0-9a-f]{{32}}\\), not of this one \\([0-9a-f]{{32}}\\)$", error);

        // All three of theirs, checked here: a complete set, of the wrong installation.
        var all = await AssertRefusedAsync(_site.Path, null, "keys", "verify-shares", "--share", theirs[0], "--share", theirs[1], "--share", theirs[2]);
        Assert.StartsWith($"'{theirs[0]}' is a share of another installation", all);
    }

    [Fact]
    public async Task VerifyShares_WithACorruptedShare_NamesTheFile()
    {
        var files = ShareFiles(Shares);
        var lines = File.ReadAllLines(files[1]);
        var at = Array.FindIndex(lines, l => l.StartsWith("share: ", StringComparison.Ordinal));
        lines[at] = lines[at][..20] + (lines[at][20] == '0' ? '1' : '0') + lines[at][21..];
        File.WriteAllLines(files[1], lines);

        await AssertRefusedAsync(_site.Path, $"'{files[1]}' is a corrupted key share: its check value does not match its content",
            "keys", "verify-shares", "--share", files[0], "--share", files[1], "--share", files[2]);
    }

    /// <summary>
    /// A share altered with its check value recomputed reads as a valid file; the key check refuses
    /// three shares including it, and among four the other three outvote it and it is named.
    /// </summary>
    [Fact]
    public async Task VerifyShares_WithAnAlteredShareWhoseCheckValueWasRecomputed_RefusesTheSet_OrNamesItAmongFour()
    {
        var files = ShareFiles(Shares);
        using (var original = TrustedProxy.KeyEscrow.KeyShareFile.Read(files[2]))
        {
            var value = original.Value.ToArray();
            value[0] ^= 1;
            File.Delete(files[2]);
            TrustedProxy.KeyEscrow.KeyShareFile.Write(files[2], new TrustedProxy.KeyEscrow.KeyShare(original.InstallationId, original.SplitId, 3, 5, original.Index, value, files[2]));
        }

        var three = await AssertRefusedAsync(_site.Path, null, "keys", "verify-shares", "--share", files[0], "--share", files[1], "--share", files[2]);
        Assert.Matches("^the 3 shares do not rebuild the master key of installation [0-9a-f]{32} \\(its check value does not match\\): one of them was altered", three);

        await AssertRefusedAsync(_site.Path, $"'{files[2]}' does not fit the other shares of split {SplitOf(files[0])}: it was altered after it was written (the others rebuild the key)",
            "keys", "verify-shares", "--share", files[0], "--share", files[2], "--share", files[1], "--share", files[3]);
    }

    [Fact]
    public async Task VerifyShares_WithTheSameShareTwice_IsRefused()
    {
        var files = ShareFiles(Shares);
        var copy = Path.Combine(_otherSite.Path, "copy.txt");
        File.Copy(files[0], copy);

        await AssertRefusedAsync(_site.Path, $"'{files[0]}' is given twice",
            "keys", "verify-shares", "--share", files[0], "--share", files[1], "--share", files[0]);
        var duplicate = await AssertRefusedAsync(_site.Path, null,
            "keys", "verify-shares", "--share", files[0], "--share", files[1], "--share", copy);
        Assert.StartsWith($"'{copy}' duplicates '{files[0]}': both are share 1 of split ", duplicate);
    }

    [Theory]
    [InlineData("--threshold", "6", "--threshold (6) must not exceed --shares (5)")]
    [InlineData("--threshold", "1", "--threshold must be at least 2: with 1, every share would be the master key itself")]
    [InlineData("--out", "data/escrow", "--out 'data/escrow' is inside the data directory 'data': the shares must not be kept with the key they protect")]
    public async Task KeysSplit_WithImpossibleParameters_IsAUsageError(string flag, string value, string error)
    {
        await AssertRefusedAsync(_site.Path, error, "keys", "split", flag, value);
    }

    [Fact]
    public async Task InitWithImpossibleParameters_AndKeysSplitWithoutAMasterKey_CreateNothing()
    {
        using var empty = new TemporaryDirectory();

        var init = await CliProcess.RunAsync(empty.Path, "init", "--shares", "2", "--threshold", "3");
        Assert.Equal(2, init.ExitCode);
        Assert.Equal("tproxy init: --threshold (3) must not exceed --shares (2)", init.Error.Trim());
        var inside = await CliProcess.RunAsync(empty.Path, "init", "--shares-out", "data");
        Assert.Equal(2, inside.ExitCode);
        Assert.Single(inside.Error.Trim().Split('\n'));

        var split = await CliProcess.RunAsync(empty.Path, "keys", "split");
        Assert.Equal(1, split.ExitCode);
        Assert.StartsWith("tproxy: no master key: neither TPROXY_MASTER_KEY nor 'data/keys/master.key'", split.Error);
        Assert.Single(split.Error.Trim().Split('\n'));
        Assert.Empty(Directory.EnumerateFileSystemEntries(empty.Path));
    }

    public Task DisposeAsync()
    {
        _site.Dispose();
        _otherSite.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Runs a command that must be refused: exit code 1 (2 for a usage error), one line on standard error, nothing on standard output, no file anywhere created or changed.</summary>
    private async Task<string> AssertRefusedAsync(string workingDirectory, string? expected, params string[] arguments)
    {
        var before = Snapshot();
        var (exitCode, output, error) = await CliProcess.RunAsync(workingDirectory, arguments);

        Assert.True(exitCode is 1 or 2, $"exit code {exitCode}: {output}{error}");
        Assert.Equal(arguments[1] == "split" ? 2 : 1, exitCode);
        Assert.Empty(output);
        var line = Assert.Single(error.Trim().Split('\n'));
        Assert.StartsWith("tproxy: ", line);
        if (expected is not null)
        {
            Assert.Equal($"tproxy: {expected}", line);
        }

        Assert.Equal(before, Snapshot());
        return line["tproxy: ".Length..];
    }

    private string Snapshot() => string.Join("\n", new[] { _site.Path, _otherSite.Path }
        .SelectMany(root => Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        .Order(StringComparer.Ordinal)
        .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p):O}" : p));

    private static string[] ShareFiles(string directory) =>
        [.. Directory.GetFiles(directory, "tproxy-key-share-*.txt").Order(StringComparer.Ordinal)];

    private static string SplitOf(string shareFile) =>
        File.ReadLines(shareFile).Single(l => l.StartsWith("split: ", StringComparison.Ordinal))["split: ".Length..];
}
