using System.Security.Cryptography;
using TrustedProxy.Backup;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Backup;

/// <summary>The backup's objects, names and stream, without the engine.</summary>
public sealed class BackupFormatTests : IDisposable
{
    private const int BlockSize = 128 * 1024;
    private readonly TemporaryDirectory _directory = new();
    private readonly ProxyKeyRing _keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup format tests"u8));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(BlockSize - 32)]
    public void Seal_ThenOpen_RoundTrips_AndEveryObjectIsExactlyTheBlockSize(int length)
    {
        using var keys = BackupKeys.From(_keyRing);
        var sealer = new BackupObjectSealer(keys, BlockSize);
        var payload = RandomNumberGenerator.GetBytes(length);

        var sealedObject = sealer.Seal(7, 3, payload);

        Assert.Equal(BlockSize, sealedObject.Length);
        Assert.Equal(payload, sealer.Open(7, 3, sealedObject));
    }

    [Fact]
    public void Open_OfAFlippedByte_OrAtAnotherPlace_OrUnderAnotherKey_IsRefused()
    {
        using var keys = BackupKeys.From(_keyRing);
        var sealer = new BackupObjectSealer(keys, BlockSize);
        var sealedObject = sealer.Seal(2, 5, "state"u8);

        var flipped = sealedObject.ToArray();
        flipped[BlockSize / 2] ^= 0x01;
        Assert.Throws<BackupIntegrityException>(() => sealer.Open(2, 5, flipped));
        Assert.Throws<BackupIntegrityException>(() => sealer.Open(2, 6, sealedObject));
        Assert.Throws<BackupIntegrityException>(() => sealer.Open(3, 5, sealedObject));
        Assert.Throws<BackupIntegrityException>(() => sealer.Open(2, BackupKeys.ManifestSequence, sealedObject));
        Assert.Throws<BackupIntegrityException>(() => sealer.Open(2, 5, sealedObject.AsSpan(1)));

        using var otherRing = ProxyKeyRing.FromBytes(SHA256.HashData("another installation"u8));
        using var otherKeys = BackupKeys.From(otherRing);
        Assert.Throws<BackupIntegrityException>(() => new BackupObjectSealer(otherKeys, BlockSize).Open(2, 5, sealedObject));
    }

    [Fact]
    public void Names_AreDeterministicFromTheKey_DifferPerGenerationAndSequence_AndHaveTheRandomNamesFormat()
    {
        using var keys = BackupKeys.From(_keyRing);
        using var sameRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup format tests"u8));
        using var same = BackupKeys.From(sameRing);
        using var otherRing = ProxyKeyRing.FromBytes(SHA256.HashData("another installation"u8));
        using var other = BackupKeys.From(otherRing);

        var names = new HashSet<ObjectName>();
        for (long generation = 0; generation < 20; generation++)
        {
            for (ulong sequence = 0; sequence < 50; sequence++)
            {
                var name = keys.NameOf(generation, sequence);
                Assert.Equal(name, same.NameOf(generation, sequence));
                Assert.NotEqual(name, other.NameOf(generation, sequence));
                Assert.True(names.Add(name));
            }

            Assert.True(names.Add(keys.ManifestNameOf(generation)));
        }

        // The format of a random name: 32 lowercase hex digits, every digit value in use.
        var random = ObjectName.NewRandom().ToString();
        Assert.All(names, n => Assert.Matches("^[0-9a-f]{32}$", n.ToString()));
        Assert.Equal(random.Length, names.First().ToString().Length);
        var digits = string.Concat(names.Select(n => n.ToString()));
        Assert.Equal(16, digits.Distinct().Count());
        var counts = digits.GroupBy(c => c).Select(g => g.Count()).ToList();
        var expected = digits.Length / 16.0;
        Assert.All(counts, c => Assert.InRange(c, expected * 0.9, expected * 1.1));
    }

    [Fact]
    public async Task Stream_RoundTripsEveryEntry_AndAnAlteredEntryIsRefused()
    {
        var source = Path.Combine(_directory.Path, "source");
        Directory.CreateDirectory(source);
        var files = new List<(string Path, string Source)>();
        var contents = new Dictionary<string, byte[]>();
        foreach (var (path, length) in new[] { ("data/proxy.db", 70_000), ("data/audit/audit.log", 1234), ("data/staging/abc.tpx", 0), ("certs/ca/ca.key.pem", 500) })
        {
            var file = Path.Combine(source, Guid.NewGuid().ToString("N"));
            var bytes = RandomNumberGenerator.GetBytes(length);
            await File.WriteAllBytesAsync(file, bytes);
            files.Add((path, file));
            contents[path] = bytes;
        }

        using var stream = new MemoryStream();
        var written = await BackupStreamFormat.WriteAsync(files, stream, CancellationToken.None);
        stream.Position = 0;
        var data = Path.Combine(_directory.Path, "restored-data");
        var certs = Path.Combine(_directory.Path, "restored-certs");
        var read = await BackupStreamFormat.ExtractAsync(stream, data, certs, CancellationToken.None);

        Assert.Equal(written.Select(e => (e.Path, e.Length, Convert.ToHexString(e.Sha256))), read.Select(e => (e.Path, e.Length, Convert.ToHexString(e.Sha256))));
        Assert.Equal(contents["data/proxy.db"], await File.ReadAllBytesAsync(Path.Combine(data, "proxy.db")));
        Assert.Equal(contents["data/audit/audit.log"], await File.ReadAllBytesAsync(Path.Combine(data, "audit", "audit.log")));
        Assert.Empty(await File.ReadAllBytesAsync(Path.Combine(data, "staging", "abc.tpx")));
        Assert.Equal(contents["certs/ca/ca.key.pem"], await File.ReadAllBytesAsync(Path.Combine(certs, "ca", "ca.key.pem")));

        var altered = stream.ToArray();
        altered[^10] ^= 0x40;
        var again = Path.Combine(_directory.Path, "again");
        var error = await Assert.ThrowsAsync<BackupIntegrityException>(() => BackupStreamFormat.ExtractAsync(new MemoryStream(altered), again, again + "-certs", CancellationToken.None));
        Assert.Contains("certs/ca/ca.key.pem", error.Message);
    }

    public void Dispose()
    {
        _keyRing.Dispose();
        _directory.Dispose();
    }
}
