using System.Net;
using System.Security.Cryptography;
using Xunit.Abstractions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// A whole CT study through WADO-RS from the real server process (<c>tproxy serve</c>): its peak
/// resident memory (the kernel's high-water mark) stays under the issue's bound of 400 MB although
/// the study is larger than that, in the original view (every pixel-sealed instance restored) and
/// as a consumer of another organisation (every instance fingerprinted). Opening every instance
/// before sending the first, as the proxy used to, holds the whole study and fails this.
/// </summary>
[Collection(StudyMemoryCollection.Name)]
public sealed class StudyMemoryTests(ITestOutputHelper output)
{
    private static readonly long Bound = LargeStudy.Bound;

    // 512 × 512 × 16 bit: 525 kB an instance, 550 MB in all, more than the bound (TPROXY_STUDY_INSTANCES=2000 for the issue's CT study).
    private static readonly int Instances = LargeStudy.Instances(1_050);

    [Fact]
    public async Task AStudyLargerThanTheBound_ComesBackWhole_InBoundedMemory_OriginalAndFingerprinted()
    {
        using var directory = new TemporaryDirectory();
        var port = FreePort.Next();
        LargeStudy.WriteServerConfiguration(directory.Path, port);
        using var server = await ServerProcess.StartAsync(directory.Path, port);
        var issued = await CliProcess.RunAsync(directory.Path, "ca", "issue", "--org", "Haukeland", "--role", "consumer");
        Assert.True(issued.ExitCode == 0, issued.Error);

        var studyUid = LargeStudy.NewUid();
        var digests = new string[Instances];
        long studyBytes = 0;
        using (var producer = Client(directory.Path, port, LocalFederation.ClientFileStem("Local Hospital", ProxyRole.Producer)))
        {
            await Parallel.ForAsync(0, Instances, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, token) =>
            {
                var file = LargeStudy.Instance(studyUid, "MEMORY1", i);
                digests[i] = Convert.ToHexStringLower(SHA256.HashData(file));
                Interlocked.Add(ref studyBytes, file.Length);
                await producer.UploadAsync(new MemoryStream(file), cancellationToken: token);
            });
        }

        Assert.True(studyBytes > Bound, $"the study ({studyBytes:N0} bytes) must be larger than the bound to test it");

        using (var consumer = Client(directory.Path, port, LocalFederation.ClientFileStem("Local Hospital", ProxyRole.Consumer)))
        {
            var (parts, _, received) = await RetrieveAsync(consumer, studyUid);
            Assert.Equal(Instances, parts);
            Assert.Equal(digests.Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal));
        }

        var afterOriginal = server.PeakResidentBytes;
        Assert.True(afterOriginal < Bound, $"peak resident memory {afterOriginal >> 20} MiB after the original study");

        using (var other = Client(directory.Path, port, "haukeland-consumer"))
        {
            var (parts, marks, received) = await RetrieveAsync(other, studyUid);
            Assert.Equal(Instances, parts);
            Assert.Empty(received.Intersect(digests));
            Assert.All(marks, m => Assert.Equal("fingerprinted", m));
        }

        var afterFingerprinted = server.PeakResidentBytes;
        output.WriteLine($"study {studyBytes >> 20} MiB in {Instances} instances; peak resident {afterOriginal >> 20} MiB after the original view, {afterFingerprinted >> 20} MiB after the fingerprinted one");
        Assert.True(afterFingerprinted < Bound, $"peak resident memory {afterFingerprinted >> 20} MiB after the fingerprinted study");
    }

    /// <summary>
    /// The same from the cloud: the study is released at once (fast slots), the server restarted
    /// with every setting at its default, and the study read back through the epoch schedule,
    /// padded to its size class among cover streams, relocated record by record as it is read. The
    /// read stream runs at its own pace: what the client has not taken yet waits in memory up to the
    /// read-ahead budget, then on disk.
    /// </summary>
    [Fact]
    public async Task AStudyLargerThanTheBound_ReadFromTheCloud_ComesBackWhole_InBoundedMemory()
    {
        var instances = LargeStudy.Instances(CloudInstances);
        using var directory = new TemporaryDirectory();
        var port = FreePort.Next();
        LargeStudy.WriteServerConfiguration(directory.Path, port, fastRelease: true);
        var studyUid = LargeStudy.NewUid();
        var digests = new string[instances];
        long studyBytes = 0;
        using (var server = await ServerProcess.StartAsync(directory.Path, port))
        {
            using var producer = Client(directory.Path, port, LocalFederation.ClientFileStem("Local Hospital", ProxyRole.Producer));
            await Parallel.ForAsync(0, instances, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, token) =>
            {
                var file = LargeStudy.Instance(studyUid, "MEMORY2", i);
                digests[i] = Convert.ToHexStringLower(SHA256.HashData(file));
                Interlocked.Add(ref studyBytes, file.Length);
                await producer.UploadAsync(new MemoryStream(file), cancellationToken: token);
            });

            // Released: no record's cache file is left in the staging area.
            var staging = Path.Combine(directory.Path, "data", "staging");
            await FileEvents.WaitUntilAsync(
                staging,
                () => Task.FromResult(!Directory.EnumerateFiles(staging, "*.tpx").Any()),
                TimeSpan.FromMinutes(10),
                () => $"{Directory.EnumerateFiles(staging, "*.tpx").Count()} cache files left");
            server.KillNine();
        }

        LargeStudy.WriteServerConfiguration(directory.Path, port, fastRelease: false);
        using var restarted = await ServerProcess.StartAsync(directory.Path, port);
        var started = restarted.PeakResidentBytes;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using (var consumer = Client(directory.Path, port, LocalFederation.ClientFileStem("Local Hospital", ProxyRole.Consumer)))
        {
            var (parts, _, received) = await RetrieveAsync(consumer, studyUid);
            Assert.Equal(instances, parts);
            Assert.Equal(digests.Order(StringComparer.Ordinal), received.Order(StringComparer.Ordinal));
        }

        var peak = restarted.PeakResidentBytes;
        output.WriteLine($"study {studyBytes >> 20} MiB in {instances} instances read from the cloud in {watch.Elapsed.TotalSeconds:F0} s; peak resident {started >> 20} MiB at start, {peak >> 20} MiB after");
        Assert.True(peak < Bound, $"peak resident memory {peak >> 20} MiB reading {studyBytes >> 20} MiB from the cloud");
    }

    // Smaller than the cached case: the epoch schedule reads 64 blocks a second.
    private static readonly int CloudInstances = 800;

    /// <summary>Streams the study, hashing each part as it arrives; returns the part count, their marks (when the parts say) and digests.</summary>
    private static async Task<(int Parts, List<string> Marks, List<string> Digests)> RetrieveAsync(TrustedProxyClient client, string studyUid)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"dicomweb/studies/{studyUid}");
        request.Headers.Accept.ParseAdd("multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(response.Content.Headers.ContentType!.ToString()).Boundary).Value!;
        await using var body = await response.Content.ReadAsStreamAsync();
        var reader = new MultipartReader(boundary, body) { BodyLengthLimit = null };
        var digests = new List<string>();
        var marks = new List<string>();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        while (await reader.ReadNextSectionAsync() is { } section)
        {
            if (section.Headers?.TryGetValue("Watermark", out var mark) == true)
            {
                marks.Add(mark.ToString());
            }

            int read;
            while ((read = await section.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }

            digests.Add(Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        return (digests.Count, marks, digests);
    }

    private static TrustedProxyClient Client(string root, int port, string stem) => LargeStudy.Client(root, port, stem);
}

/// <summary>
/// The memory tests measure a server's peak resident memory, which depends on how fast its client
/// takes what the read stream brings (what is not taken waits in memory up to the read-ahead
/// budget) and on when the GC runs: with the rest of the suite running beside it on two cores, the
/// cloud test once peaked at 460 MiB where it measured 325 MiB alone. They run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StudyMemoryCollection
{
    public const string Name = "study memory, run alone";
}
