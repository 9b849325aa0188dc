using Microsoft.Extensions.DependencyInjection;
using System.Text.Json;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>The tproxy executable as an operator uses it: one line per outcome, a non-zero exit on failure.</summary>
public sealed class CliTests : ProxyTest
{
    [Fact]
    public async Task Init_CreatesTheCaTheServerCertificateAndOneCredentialPerRole_WithKeysOwnerOnly()
    {
        using var directory = new TemporaryDirectory();

        var (exitCode, output, error) = await CliProcess.RunAsync(directory.Path, "init", "--org", "St Olav");

        Assert.True(exitCode == 0, error);
        var certs = Path.Combine(directory.Path, "certs");
        foreach (var role in ProxyRoles.Names)
        {
            Assert.True(File.Exists(Path.Combine(certs, "clients", $"st-olav-{role}.p12")), output);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certs, "clients", $"st-olav-{role}.key.pem")));
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certs, "ca", "ca.key.pem")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(certs, "server", "server.key.pem")));

        // The CA key's passphrase is derived from the master key: nothing beside the key opens it, and
        // the CLI opens it again through the master key to issue.
        Assert.Empty(Directory.GetFiles(Path.Combine(certs, "ca"), "*.secret"));
        var issued = await CliProcess.RunAsync(directory.Path, "ca", "issue", "--org", "Haukeland", "--role", "consumer");
        Assert.True(issued.ExitCode == 0, issued.Error);

        var again = await CliProcess.RunAsync(directory.Path, "init", "--org", "St Olav");
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("kept existing CA", again.Output);
    }

    [Fact]
    public async Task ACaKeyFileBesideTheKey_IsRetired_TheKeyReEncryptedUnderTheDerivedPassphrase_Audited_AndARerunChangesNothing()
    {
        using var directory = new TemporaryDirectory();
        var paths = new TrustedProxy.CertificateAuthority.CertificateAuthorityPaths(Path.Combine(directory.Path, "certs"));

        // A CA as made before the passphrase was derived: a random passphrase in a file beside the key.
        TrustedProxy.CertificateAuthority.ProxyCertificateAuthority.Create(paths, "Older Root", passphrase: null, TimeProvider.System);
        Assert.True(File.Exists(paths.CaKeyFile));
        var key = File.ReadAllText(paths.CaPrivateKey);
        using (TrustedProxy.Crypto.ProxyKeyRing.LoadOrCreate(Path.Combine(directory.Path, "data", "keys", "master.key")))
        {
        }

        var changed = await CliProcess.RunAsync(directory.Path, "ca", "passphrase");

        Assert.True(changed.ExitCode == 0, changed.Error);
        Assert.False(File.Exists(paths.CaKeyFile));
        Assert.NotEqual(key, File.ReadAllText(paths.CaPrivateKey));
        var issued = await CliProcess.RunAsync(directory.Path, "ca", "issue", "--org", "Local Hospital", "--role", "producer");
        Assert.True(issued.ExitCode == 0, issued.Error);
        Assert.Contains("\"ca-key-passphrase\"", File.ReadAllText(Path.Combine(directory.Path, "data", "audit", "audit.log")), StringComparison.Ordinal);

        var again = await CliProcess.RunAsync(directory.Path, "ca", "passphrase");
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("nothing changed", again.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_DeclaresTheReadLoad_StatesItsDailyCost_AndTheServerReadsIt_WhileABadDeclarationChangesNothing()
    {
        using var directory = new TemporaryDirectory();

        var bad = await CliProcess.RunAsync(directory.Path, "init", "--retrievals-per-day", "-3");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--retrievals-per-day must be between", bad.Error);
        Assert.Single(bad.Error.Trim().Split('\n'));
        Assert.Empty(Directory.EnumerateFileSystemEntries(directory.Path));

        var (exitCode, output, error) = await CliProcess.RunAsync(directory.Path, "init", "--retrievals-per-day", "40", "--retrieval-megabytes", "250");
        Assert.True(exitCode == 0, error);
        Assert.Contains("declared 40 retrievals of 250 MB a day: about 10 GB wanted and 22 GB read from the cloud a day", output);
        var declared = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(directory.Path, "config", "declared-load.json"))).RootElement.GetProperty("TrustedProxy").GetProperty("ObliviousRetrieval");
        Assert.Equal(40, declared.GetProperty("DeclaredRetrievalsPerDay").GetDouble());
        Assert.Equal(250, declared.GetProperty("DeclaredRetrievalMegabytes").GetDouble());

        await using var proxy = await ProxyHost.StartAsync(root: directory.Path);
        Assert.Equal(40, proxy.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrustedProxy.ObliviousRetrieval.ObliviousRetrievalOptions>>().Value.DeclaredRetrievalsPerDay);
    }

    [Theory]
    [InlineData("--uploads-per-day", "-1", "--upload-megabytes", "50", "--uploads-per-day must be between")]
    [InlineData("--uploads-per-day", "10", "--upload-megabytes", "0", "--upload-megabytes must be between")]
    [InlineData("--uploads-per-day", "10000000", "--upload-megabytes", "1000000", "needs more than 100,000 slots/s")]
    public async Task Init_WithABadWriteLoad_IsOneLineOnStandardError_ExitCode2_AndCreatesNothing(string uploadsFlag, string uploads, string sizeFlag, string size, string error)
    {
        using var directory = new TemporaryDirectory();

        var bad = await CliProcess.RunAsync(directory.Path, "init", uploadsFlag, uploads, sizeFlag, size);

        Assert.Equal(2, bad.ExitCode);
        Assert.Contains(error, bad.Error, StringComparison.Ordinal);
        Assert.Single(bad.Error.Trim().Split('\n'));
        Assert.Empty(Directory.EnumerateFileSystemEntries(directory.Path));
    }

    [Fact]
    public async Task Init_DeclaresTheWriteLoad_KeepingTheReadLoadDeclaredBefore_StatesTheDailyCloudWrites_AndTheServerFollowsIt()
    {
        using var directory = new TemporaryDirectory();
        var reads = await CliProcess.RunAsync(directory.Path, "init", "--retrievals-per-day", "40");
        Assert.True(reads.ExitCode == 0, reads.Error);
        Assert.Contains("writes               2 GB a day written to the cloud and kept", reads.Output, StringComparison.Ordinal);

        var (exitCode, output, error) = await CliProcess.RunAsync(directory.Path, "init", "--uploads-per-day", "400", "--upload-megabytes", "100");

        Assert.True(exitCode == 0, error);
        // Four times the declared bytes: three for the uploads and their cover, one for the backup (on by default).
        Assert.Contains("writes               160 GB a day written to the cloud and kept, 58.4 TB a year, whatever the load: 14.129 writes/s of 128 KiB", output, StringComparison.Ordinal);
        Assert.Contains("declared 40 retrievals of 500 MB a day", output, StringComparison.Ordinal);
        var declared = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory.Path, "config", "declared-load.json"))).RootElement.GetProperty("TrustedProxy");
        Assert.Equal(40, declared.GetProperty("ObliviousRetrieval").GetProperty("DeclaredRetrievalsPerDay").GetDouble());
        Assert.Equal(400, declared.GetProperty("UploadCache").GetProperty("DeclaredUploadsPerDay").GetDouble());
        Assert.Equal(100, declared.GetProperty("UploadCache").GetProperty("DeclaredUploadMegabytes").GetDouble());

        // The server at the product's defaults (cache and backup on) runs the rate init stated.
        await using var proxy = await ProxyHost.StartAsync(root: directory.Path, settings: new Dictionary<string, string?> { ["TrustedProxy:UploadCache:Enabled"] = "true", ["TrustedProxy:Backup:Enabled"] = null });
        var options = proxy.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TrustedProxy.UploadCache.UploadCacheOptions>>().Value;
        Assert.Equal(14.129, options.SlotsPerSecond, 3);
    }

    [Fact]
    public async Task UploadFindFetch_WorkEndToEnd()
    {
        using var work = new TemporaryDirectory();
        var folder = Directory.CreateDirectory(Path.Combine(work.Path, "study")).FullName;
        var files = new[] { "CT_small.dcm", "MR_small.dcm" }.Select(n => Path.Combine(DicomCorpus.TestFiles, n)).ToList();
        files.ForEach(f => File.Copy(f, Path.Combine(folder, Path.GetFileName(f))));

        var upload = await Cli("upload", folder, "--as", "producer");
        Assert.True(upload.ExitCode == 0, upload.Error);
        Assert.Equal(2, upload.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var patient = DicomCorpus.Get("CT_small.dcm").PatientId!;
        var find = await Cli("find", "--patient-id", patient, "--json");
        Assert.True(find.ExitCode == 0, find.Error);
        var handle = Assert.Single(JsonDocument.Parse(find.Output).RootElement.EnumerateArray()).GetProperty("handle").GetString()!;

        var target = Path.Combine(work.Path, "back.dcm");
        var fetch = await Cli("fetch", handle, "-o", target);
        Assert.True(fetch.ExitCode == 0, fetch.Error);
        Assert.Equal(File.ReadAllBytes(files[0]), File.ReadAllBytes(target));
    }

    [Fact]
    public async Task ARefusedUpload_IsOneLineOnStandardError_AndExitCode1()
    {
        var (exitCode, output, error) = await Cli("upload", Path.Combine(DicomCorpus.TestFiles, "MR_truncated.dcm"), "--as", "producer");

        Assert.Equal(1, exitCode);
        Assert.Contains("refused", output);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tproxy: ", error);
    }

    [Fact]
    public async Task FetchingAnUnknownHandle_IsOneLineOnStandardError_AndExitCode1()
    {
        var (exitCode, _, error) = await Cli("fetch", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "-o", "-");

        Assert.Equal(1, exitCode);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("404", error);
    }

    [Fact]
    public async Task AMissingPath_IsAUsageError_ExitCode2()
    {
        var (exitCode, _, error) = await Cli("upload", "/nonexistent/file.dcm");

        Assert.Equal(2, exitCode);
        Assert.StartsWith("tproxy: ", error);
    }

    [Fact]
    public async Task AnUnknownRole_IsRefusedWithTheChoices()
    {
        var (exitCode, _, error) = await Cli("whoami", "--as", "superuser");

        Assert.NotEqual(0, exitCode);
        Assert.Contains("producer, consumer, compliance, admin", error);
    }

    [Fact]
    public async Task CaIssueListAndRevoke_WorkOnTheFiles()
    {
        var issue = await CliProcess.RunAsync(Proxy.Root, "ca", "issue", "--org", "Haukeland", "--role", "consumer", "--days", "30");
        Assert.True(issue.ExitCode == 0, issue.Error);
        var serial = issue.Output.Split('\t')[0];

        var list = await CliProcess.RunAsync(Proxy.Root, "ca", "list", "--json");
        Assert.Contains(JsonDocument.Parse(list.Output).RootElement.EnumerateArray(), c => c.GetProperty("serial").GetString() == serial);

        var whoami = await Cli("whoami", "--cert", Path.Combine(Proxy.Certificates.ClientsDirectory, "haukeland-consumer.p12"));
        Assert.True(whoami.ExitCode == 0, whoami.Error);
        Assert.StartsWith("Haukeland\tconsumer", whoami.Output);

        Assert.Equal(0, (await CliProcess.RunAsync(Proxy.Root, "ca", "revoke", serial)).ExitCode);
        var refused = await Cli("whoami", "--cert", Path.Combine(Proxy.Certificates.ClientsDirectory, "haukeland-consumer.p12"));
        Assert.Equal(1, refused.ExitCode);
        Assert.True(refused.Error.Contains("handshake"), refused.Error);
    }

    [Fact]
    public async Task AfterEnrollingAnotherHospitalsConsumer_AsConsumer_StillUsesTheLocalOrganisations_OrSaysHowToChoose()
    {
        var issue = await CliProcess.RunAsync(Proxy.Root, "ca", "issue", "--org", "St Olav", "--role", "consumer");
        Assert.True(issue.ExitCode == 0, issue.Error);

        var whoami = await Cli("whoami", "--as", "consumer");

        Assert.True(whoami.ExitCode == 0, whoami.Error);
        Assert.StartsWith("Local Hospital\tconsumer\t", whoami.Output);

        // A local organisation with no credential among them (as configured where the command runs): one line says how to choose.
        Directory.CreateDirectory(Path.Combine(Proxy.Root, "config"));
        File.WriteAllText(Path.Combine(Proxy.Root, "config", "appsettings.json"), """{"TrustedProxy":{"Server":{"LocalOrganisation":"Haukeland"}}}""");
        var ambiguous = await Cli("whoami", "--as", "consumer");
        Assert.Equal(1, ambiguous.ExitCode);
        Assert.Single(ambiguous.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("choose one with --cert", ambiguous.Error, StringComparison.Ordinal);
        Assert.Contains("'Haukeland'", ambiguous.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FetchAmong_TakesTheChosenRecordsByObliviousTransfer()
    {
        var files = Enumerable.Range(0, 4).Select(i => new DicomFileBuilder().Patient($"CLIOT{i}", "Cli^Oblivious").PixelData(5000 * (i + 1), seed: i).Build()).ToList();
        var handles = new List<string>();
        foreach (var file in files)
        {
            handles.Add((await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
        }

        var directory = Path.Combine(Proxy.Root, "taken");
        Directory.CreateDirectory(directory);
        var fetched = await Cli("fetch", "--among", string.Join(",", handles), $"{handles[1]},{handles[3]}", "-o", directory);

        Assert.True(fetched.ExitCode == 0, fetched.Error);
        Assert.Contains("2 of 4", fetched.Output, StringComparison.Ordinal);
        Assert.Equal(files[1], File.ReadAllBytes(Path.Combine(directory, handles[1] + ".dcm")));
        Assert.Equal(files[3], File.ReadAllBytes(Path.Combine(directory, handles[3] + ".dcm")));

        var outside = await Cli("fetch", "--among", string.Join(",", handles[..2]), handles[3]);
        Assert.Equal(1, outside.ExitCode);
        Assert.Contains("--among", outside.Error, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output, string Error)> Cli(params string[] arguments) =>
        CliProcess.RunAsync(Proxy.Root, [.. arguments, "--server", Proxy.BaseAddress.ToString()]);

    [Fact]
    public async Task ResearchChaosEncrypt_ScramblesThePixelsUnderANewOwnerOnlyKey_AndDecryptGivesThemBack()
    {
        using var directory = new TemporaryDirectory();
        var original = Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm");
        var key = Path.Combine(directory.Path, "chaos.key");
        var scrambled = Path.Combine(directory.Path, "scrambled.dcm");
        var back = Path.Combine(directory.Path, "back.dcm");

        var encrypt = await CliProcess.RunAsync(directory.Path, "research", "chaos-encrypt", "--key", key, original, scrambled);
        var decrypt = await CliProcess.RunAsync(directory.Path, "research", "chaos-decrypt", "--key", key, scrambled, back);

        Assert.Equal(0, encrypt.ExitCode);
        Assert.Contains("not a protection", encrypt.Error);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        var pixels = await PixelsAsync(original);
        Assert.NotEqual(pixels, await PixelsAsync(scrambled));
        Assert.Equal(0, decrypt.ExitCode);
        Assert.Equal(pixels, await PixelsAsync(back));

        var wrongKey = Path.Combine(directory.Path, "short.key");
        await File.WriteAllBytesAsync(wrongKey, new byte[5]);
        var refused = await CliProcess.RunAsync(directory.Path, "research", "chaos-decrypt", "--key", wrongKey, scrambled, back);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("32 bytes", refused.Error);
    }

    private static async Task<byte[]> PixelsAsync(string path) =>
        (await TrustedProxy.Dicom.DicomFile.ReadAsync(path)).Dataset.Find(TrustedProxy.Dicom.DicomTag.PixelData)!.Value.ToArray();
}
