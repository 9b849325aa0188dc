using System.Text;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>
/// The whole flow of issue #2 on each backend: every well-formed file of pydicom's corpus goes
/// up as a producer and comes back bit-exact to a consumer, and then the cloud is searched for
/// anything it should not hold.
/// </summary>
public abstract class CorpusRoundTripTests
{
    /// <summary>The corpus holds variants of one instance (other transfer syntaxes, edits) under one SOP Instance UID: each is a record of its own here.</summary>
    protected static readonly IReadOnlyDictionary<string, string?> KeepAll = new Dictionary<string, string?> { ["TrustedProxy:Records:DuplicateInstance"] = "keep-all" };

    protected abstract Task<ProxyHost> StartAsync();

    [Fact]
    public async Task EveryCorpusFile_RoundTripsBitExact_AndTheCloudHoldsOnlyRandomNamedCiphertext()
    {
        await using var proxy = await StartAsync();
        var producer = proxy.Client(ProxyRole.Producer);
        var consumer = proxy.Client(ProxyRole.Consumer);
        var files = DicomCorpus.WellFormedPart10.ToList();
        Assert.Contains(files, f => f.IsCompressed);
        Assert.Contains(files, f => !f.IsCompressed);

        var handles = new Dictionary<string, CorpusFile>();
        var namesInUploadOrder = new List<ObjectName>();
        foreach (var file in files)
        {
            var result = await producer.UploadFileAsync(file.Path);
            if (result.AlreadyStored)
            {
                // A byte-identical copy of a file uploaded before (the corpus has a few): the same record.
                Assert.Equal(await File.ReadAllBytesAsync(handles[result.Handle].Path), await File.ReadAllBytesAsync(file.Path));
                continue;
            }

            handles.Add(result.Handle, file);
            var before = namesInUploadOrder.ToHashSet();
            namesInUploadOrder.AddRange((await proxy.CloudObjectsAsync()).Select(o => o.Name).Where(n => !before.Contains(n)));
        }

        foreach (var (handle, file) in handles)
        {
            using var fetched = new MemoryStream();
            await consumer.FetchAsync(handle, fetched);
            Assert.True(File.ReadAllBytes(file.Path).AsSpan().SequenceEqual(fetched.ToArray()), $"{file} did not come back bit-exact");
        }

        // Every object is one fixed-size block: the sizes the cloud sees say nothing about the files.
        var objects = await proxy.CloudObjectsAsync();
        Assert.True(objects.Count >= files.Count);
        Assert.Equal(objects.Count, namesInUploadOrder.Count);
        Assert.All(objects, o => Assert.Equal(new UploadCacheOptions().BlockSizeBytes, o.Length));
        AssertNamesLookRandom(namesInUploadOrder);
        await AssertNoSourceValueInTheCloud(proxy, objects, files);
    }

    private static void AssertNamesLookRandom(IReadOnlyList<ObjectName> inUploadOrder)
    {
        var names = inUploadOrder.Select(n => n.ToString()).ToList();

        // No two names share an 8-hex-digit prefix (a 1 in 2^32 event per pair for random names).
        Assert.Equal(names.Count, names.Select(n => n[..8]).Distinct().Count());

        // The upload order is not the names' order, in either direction.
        Assert.NotEqual(names.Order(StringComparer.Ordinal), names);
        Assert.NotEqual(names.OrderDescending(StringComparer.Ordinal), names);

        // Consecutive uploads' names are as far apart as random ones: about half the bits differ.
        var distances = names.Zip(names.Skip(1)).Select(p => HammingDistance(p.First, p.Second)).ToList();
        Assert.InRange(distances.Average(), 52, 76);
    }

    private static async Task AssertNoSourceValueInTheCloud(ProxyHost proxy, IReadOnlyList<StoredObject> objects, IReadOnlyList<CorpusFile> files)
    {
        // Values of six bytes or more: a shorter run turns up in random bytes by chance.
        var needles = files.SelectMany(f => f.TextValues)
            .Where(v => v.Length >= 6)
            .SelectMany(v => new[] { Encoding.UTF8.GetBytes(v), Encoding.Latin1.GetBytes(v) })
            .Where(b => b.Length >= 6)
            .DistinctBy(Convert.ToBase64String)
            .ToList();
        Assert.True(needles.Count > 300, $"only {needles.Count} values to look for; the oracle is not reading the corpus");
        Assert.Contains(needles, n => Encoding.ASCII.GetString(n) == files.First(f => f.PatientId is { Length: >= 6 }).PatientId);

        // Control: the same search finds the values in the plaintext files (those not deflated), so a
        // miss in the cloud means something.
        Assert.All(files.Where(f => f.StudyInstanceUid is not null && f.TransferSyntaxUid != "1.2.840.10008.1.2.1.99"), f =>
            Assert.True(File.ReadAllBytes(f.Path).AsSpan().IndexOf(Encoding.ASCII.GetBytes(f.StudyInstanceUid!)) >= 0, $"control search failed on {f}"));

        foreach (var stored in objects)
        {
            var bytes = await proxy.ReadCloudObjectAsync(stored.Name);
            var name = Encoding.ASCII.GetBytes(stored.Name.ToString());
            foreach (var needle in needles)
            {
                Assert.True(bytes.AsSpan().IndexOf(needle) < 0, $"object {stored.Name} contains the source value '{Encoding.UTF8.GetString(needle)}'");

                // Names are 32 random hex digits: a value made of hex digits alone (a date, a number)
                // turns up in one by chance (it happened once in ~30 runs); anything else cannot.
                Assert.True(needle.All(IsHexDigit) || name.AsSpan().IndexOf(needle) < 0, $"object name {stored.Name} contains a source value");
            }
        }
    }

    private static bool IsHexDigit(byte b) => b is (>= (byte)'0' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'f');

    private static int HammingDistance(string a, string b) =>
        Convert.FromHexString(a).Zip(Convert.FromHexString(b)).Sum(p => System.Numerics.BitOperations.PopCount((uint)(p.First ^ p.Second)));
}

public sealed class FileSystemCorpusRoundTripTests : CorpusRoundTripTests
{
    protected override Task<ProxyHost> StartAsync() => ProxyHost.StartAsync(BackendSettings.FileSystem, KeepAll);
}

[Collection("azurite")]
public sealed class AzureBlobCorpusRoundTripTests(AzuriteFixture azurite) : CorpusRoundTripTests
{
    protected override Task<ProxyHost> StartAsync() => ProxyHost.StartAsync(BackendSettings.Azurite(azurite.Emulator), KeepAll);
}

[Collection("s3rver")]
public sealed class S3CorpusRoundTripTests : CorpusRoundTripTests, IDisposable
{
    private readonly S3rverFixture _s3rver;

    public S3CorpusRoundTripTests(S3rverFixture s3rver)
    {
        _s3rver = s3rver;
        s3rver.BeginCleanTest();
    }

    protected override Task<ProxyHost> StartAsync() => ProxyHost.StartAsync(_s3rver.Backend(), KeepAll);

    public void Dispose() => _s3rver.AssertNothingRefused();
}
