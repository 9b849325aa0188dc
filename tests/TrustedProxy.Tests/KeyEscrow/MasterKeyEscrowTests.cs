using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.KeyEscrow;

namespace TrustedProxy.Tests.KeyEscrow;

public sealed class MasterKeyEscrowTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly byte[] _master = RandomNumberGenerator.GetBytes(ProxyKeyRing.MasterKeyBytes);

    [Fact]
    public void AnyThreeOfFiveShareFiles_RecoverTheMasterKey_CheckedAgainstTheInstallationId()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 3, 5, "a");

        foreach (var subset in Triples(5))
        {
            var shares = subset.Select(i => KeyShareFile.Read(files[i])).ToList();
            using var recovered = MasterKeyEscrow.Recover(shares, MasterKeyEscrow.InstallationId(keys));

            Assert.Equal(_master, recovered.Key.ToArray());
            Assert.Equal(MasterKeyEscrow.InstallationId(keys), recovered.InstallationId);
            Assert.Equal(3, recovered.Threshold);
            Assert.Empty(recovered.Inconsistent);
        }
    }

    [Fact]
    public void TheInstallationId_IsAFunctionOfTheMasterKeyAlone()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        using var same = ProxyKeyRing.FromBytes(_master);
        using var other = ProxyKeyRing.FromBytes(RandomNumberGenerator.GetBytes(32));

        Assert.Equal(MasterKeyEscrow.InstallationId(keys), MasterKeyEscrow.InstallationId(same));
        Assert.NotEqual(MasterKeyEscrow.InstallationId(keys), MasterKeyEscrow.InstallationId(other));
        Assert.Equal(MasterKeyEscrow.InstallationIdBytes * 2, MasterKeyEscrow.InstallationId(keys).Length);
    }

    [Fact]
    public void AShareFile_IsOwnerOnly_NamesItsSplit_AndHoldsNeitherTheKeyNorTheShareInBase64()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 3, 5, "a");
        var text = File.ReadAllText(files[0]);
        using var share = KeyShareFile.Read(files[0]);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(files[0]));
        Assert.Equal(KeyShareFile.FileName(share.SplitId, 1, 5), Path.GetFileName(files[0]));
        Assert.StartsWith("# TrustedProxy master-key share 1 of 5: any 3 shares", text);
        Assert.Contains($"format: {KeyShareFile.Format}\n", text);
        Assert.DoesNotContain(Convert.ToHexStringLower(_master), text);
        Assert.DoesNotContain(Convert.ToBase64String(_master), text);
        Assert.Equal(KeyShareFile.ToText(share), text);
    }

    /// <summary>
    /// Every one-character change to a share file's content (not its comments) is refused, naming
    /// the file: a damaged digit of the share, the check value, the threshold or a field name; and
    /// the message never quotes the share, not even when the damage is to the name of its line.
    /// </summary>
    [Fact]
    public void EveryOneCharacterChange_ToAShareFile_IsRefusedNamingTheFile_WithoutQuotingTheShare()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var text = File.ReadAllText(WriteSplit(keys, 3, 5, "a")[1]);
        var body = text.IndexOf("format:", StringComparison.Ordinal);
        var shareStart = text.IndexOf("share: ", body, StringComparison.Ordinal) + "share: ".Length;
        var shareDigits = text.Substring(shareStart, 8);

        for (var i = body; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                continue;
            }

            var changed = text[..i] + Other(text[i]) + text[(i + 1)..];
            var refused = Assert.Throws<KeyShareException>(() => KeyShareFile.Parse(changed, "custodian-2.txt"));
            Assert.StartsWith("'custodian-2.txt' ", refused.Message);
            Assert.DoesNotContain("\n", refused.Message);
            Assert.DoesNotContain(shareDigits, refused.Message);
        }
    }

    [Fact]
    public void ADamagedShareDigit_IsNamedAsAWrongCheckValue()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var path = WriteSplit(keys, 3, 5, "a")[2];
        var lines = File.ReadAllLines(path);
        var at = Array.FindIndex(lines, l => l.StartsWith("share: ", StringComparison.Ordinal));
        lines[at] = lines[at][..10] + Other(lines[at][10]) + lines[at][11..];
        File.WriteAllLines(path, lines);

        var refused = Assert.Throws<KeyShareException>(() => KeyShareFile.Read(path));
        Assert.Equal($"'{path}' is a corrupted key share: its check value does not match its content", refused.Message);
    }

    [Fact]
    public void TwoSharesOfAThreeShareSplit_AreRefused_SayingHowManyMoreAreNeeded()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 3, 5, "a");

        var refused = Refused(files[0], files[3]);

        Assert.Contains("2 shares of split ", refused);
        Assert.EndsWith("and it takes 3: 1 more needed", refused);
    }

    [Fact]
    public void AShareOfAnotherInstallation_IsRefusedByName()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        using var otherKeys = ProxyKeyRing.FromBytes(RandomNumberGenerator.GetBytes(32));
        var ours = WriteSplit(keys, 3, 5, "ours");
        var theirs = WriteSplit(otherKeys, 3, 5, "theirs");

        var mixed = Refused(ours[0], ours[1], theirs[2]);
        Assert.Equal($"'{theirs[2]}' is a share of another installation ({MasterKeyEscrow.InstallationId(otherKeys)}) than '{ours[0]}' ({MasterKeyEscrow.InstallationId(keys)})", mixed);

        // Where the caller knows its installation, even a complete set of another's shares is refused.
        var shares = theirs.Take(3).Select(KeyShareFile.Read).ToList();
        var foreign = Assert.Throws<KeyShareException>(() => MasterKeyEscrow.Recover(shares, MasterKeyEscrow.InstallationId(keys)));
        Assert.Equal($"'{theirs[0]}' is a share of another installation ({MasterKeyEscrow.InstallationId(otherKeys)}), not of this one ({MasterKeyEscrow.InstallationId(keys)})", foreign.Message);
    }

    [Fact]
    public void SharesOfAnotherSplitOfTheSameKey_AreRefusedByName()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var first = WriteSplit(keys, 3, 5, "first");
        var second = WriteSplit(keys, 3, 5, "second");

        var refused = Refused(first[0], first[1], second[2]);

        Assert.StartsWith($"'{second[2]}' is of split ", refused);
        Assert.Contains("shares of different splits do not combine", refused);
    }

    [Fact]
    public void TheSameShareTwice_IsRefused_AsTheSameFileOrAsACopy()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 3, 5, "a");
        var copy = _directory.File("copy-of-share-1.txt");
        File.Copy(files[0], copy);

        Assert.Equal($"'{files[0]}' is given twice", Refused(files[0], files[1], files[0]));
        Assert.StartsWith($"'{copy}' duplicates '{files[0]}': both are share 1 of split ", Refused(files[0], files[1], copy));
    }

    /// <summary>
    /// A share altered on purpose, its check value recomputed, passes the file's check: with exactly
    /// k shares the key check refuses the set; with one share more, the others outvote it, the key
    /// is recovered and the altered share is named.
    /// </summary>
    [Fact]
    public void AnAlteredShareWithARecomputedCheckValue_FailsTheKeyCheck_OrIsOutvotedAndNamed()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 3, 5, "a");
        using (var original = KeyShareFile.Read(files[1]))
        {
            var value = original.Value.ToArray();
            value[7] ^= 0x40;
            File.Delete(files[1]);
            KeyShareFile.Write(files[1], new KeyShare(original.InstallationId, original.SplitId, 3, 5, original.Index, value, files[1]));
        }

        Assert.StartsWith("the 3 shares do not rebuild the master key of installation ", Refused(files[0], files[1], files[2]));

        var shares = new[] { files[0], files[1], files[2], files[3] }.Select(KeyShareFile.Read).ToList();
        using var recovered = MasterKeyEscrow.Recover(shares);
        Assert.Equal(_master, recovered.Key.ToArray());
        Assert.Equal(new[] { files[1] }, recovered.Inconsistent);
        Assert.DoesNotContain(files[1], recovered.Used);
    }

    [Fact]
    public void ARecoveredKey_WritesTheKeyFileTheProxyReads_ButNeverOverAnExistingOne()
    {
        using var keys = ProxyKeyRing.FromBytes(_master);
        var files = WriteSplit(keys, 2, 3, "a");
        using var recovered = MasterKeyEscrow.Recover([.. files.Skip(1).Select(KeyShareFile.Read)]);
        var path = _directory.File("data/keys/master.key");

        recovered.WriteKeyFile(path);
        using var reloaded = ProxyKeyRing.LoadOrCreate(path);

        Assert.Equal(_master, reloaded.ExportMasterKey());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Throws<IOException>(() => recovered.WriteKeyFile(path));
    }

    [Theory]
    [InlineData(1, 5, "--threshold must be at least 2")]
    [InlineData(6, 5, "--threshold (6) must not exceed --shares (5)")]
    [InlineData(2, 256, "--shares must be from 2 to 255")]
    public void ImpossibleParameters_AreNamed(int threshold, int shares, string error)
    {
        using var keys = ProxyKeyRing.FromBytes(_master);

        Assert.Contains(MasterKeyEscrow.Validate(threshold, shares), e => e.StartsWith(error, StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => MasterKeyEscrow.Split(keys, threshold, shares));
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_master);
        _directory.Dispose();
    }

    private string[] WriteSplit(ProxyKeyRing keys, int threshold, int count, string directory)
    {
        var shares = MasterKeyEscrow.Split(keys, threshold, count);
        var paths = shares.Select(s => _directory.File(Path.Combine(directory, s.Source))).ToArray();
        for (var i = 0; i < shares.Count; i++)
        {
            KeyShareFile.Write(paths[i], shares[i]);
            shares[i].Dispose();
        }

        return paths;
    }

    private static string Refused(params string[] files)
    {
        var shares = files.Select(KeyShareFile.Read).ToList();
        var refused = Assert.Throws<KeyShareException>(() => MasterKeyEscrow.Recover(shares));
        Assert.DoesNotContain("\n", refused.Message);
        return refused.Message;
    }

    private static char Other(char c) => char.IsAsciiHexDigit(c) ? Convert.ToHexStringLower([(byte)((Convert.ToByte(c.ToString(), 16) + 1) % 16)])[1] : 'Z';

    private static IEnumerable<int[]> Triples(int n) =>
        from a in Enumerable.Range(0, n)
        from b in Enumerable.Range(a + 1, n - a - 1)
        from c in Enumerable.Range(b + 1, n - b - 1)
        select new[] { a, b, c };
}
