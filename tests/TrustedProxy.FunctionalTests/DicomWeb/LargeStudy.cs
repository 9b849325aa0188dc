using System.Globalization;
using System.Text.Json;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// What the whole-study memory tests share (issue 13): the generated CT study, the bound on the
/// server's peak resident memory, and the real server's configuration.
/// </summary>
internal static class LargeStudy
{
    /// <summary>The bound, 400 MB unless <c>TPROXY_STUDY_PEAK_MB</c> says otherwise (in MiB).</summary>
    public static readonly long Bound = (int.TryParse(Environment.GetEnvironmentVariable("TPROXY_STUDY_PEAK_MB"), out var mb) ? mb : 400) * (1L << 20);

    /// <summary><c>TPROXY_STUDY_INSTANCES</c> when set (2,000 for the study), else the test's default.</summary>
    public static int Instances(int fallback) => int.TryParse(Environment.GetEnvironmentVariable("TPROXY_STUDY_INSTANCES"), out var n) ? n : fallback;

    public static string NewUid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    /// <summary>
    /// Instance <paramref name="index"/> (from 0) of a CT study: 512 × 512 × 16 bit, 525 kB, one
    /// series, seeded so that every instance differs.
    /// </summary>
    public static byte[] Instance(string studyUid, string patientId, int index) =>
        new DicomFileBuilder($"{studyUid}.1.{index + 1}")
            .SopClass(DicomFileBuilder.CtImageStorageSopClass)
            .Patient(patientId, "Memory^Bound")
            .Study(studyUid, studyUid + ".1", "20240102", "CT")
            .Text(0x0020, 0x0013, "IS", (index + 1).ToString(CultureInfo.InvariantCulture))
            .Image(512, 512, seed: index + 1)
            .Build();

    public static TrustedProxyClient Client(string root, int port, string stem) => TrustedProxyClient.FromFiles(
        new Uri($"https://127.0.0.1:{port}/"),
        Path.Combine(root, "certs", "clients", stem + ".p12"),
        string.Empty,
        new CertificateAuthorityPaths(Path.Combine(root, "certs")).CaCertificate,
        Timeout.InfiniteTimeSpan);

    public static void WriteServerConfiguration(string root, int port) => WriteServerConfiguration(root, port, fastRelease: false);

    /// <summary>The server's configuration; <paramref name="fastRelease"/>: the upload cache releases every block at once (for a study that is to be read back from the cloud), otherwise its defaults.</summary>
    public static void WriteServerConfiguration(string root, int port, bool fastRelease)
    {
        // The upload cache at its defaults keeps the study on the proxy's disk (hours before its
        // release), so the retrieval reads the cache files: the memory measured is the egress path's.
        var configuration = new
        {
            TrustedProxy = new
            {
                Server = new { Urls = new[] { $"https://127.0.0.1:{port}" }, HostNames = new[] { "127.0.0.1", "localhost" }, AutoInitializeCertificates = true, LocalOrganisation = "Local Hospital" },
                Storage = new { Backend = "filesystem", filesystem = new { Root = "data/cloud" } },
                UploadCache = fastRelease ? new { SlotsPerSecond = 2000, PoolThreshold = 1 } : null,

                // Off (it is on by default with the cache): its first increment after the upload would
                // copy the whole study's ciphertext once more, minutes of disk on a CI machine. Memory
                // with the backup on is not measured here.
                Backup = new { Enabled = false },
                Policy = new { Directory = Repository.Path("config", "policies") },
            },
            Logging = new { LogLevel = new { Default = "Warning" } },
        };
        Directory.CreateDirectory(Path.Combine(root, "config"));
        File.WriteAllText(Path.Combine(root, "config", "appsettings.json"), JsonSerializer.Serialize(configuration));
    }
}
