using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.CertificateAuthority;

/// <summary>
/// The offline root end to end (issue 16): <c>tproxy ca init</c> with the root key written outside
/// the server's directories, a real proxy admitting members over mutual TLS through the
/// intermediate, <c>tproxy ca rotate-intermediate</c> while it runs, members of both intermediates
/// admitted and revoked, another federation's members refused, and bad input changing nothing.
/// </summary>
public sealed class OfflineRootTests : IDisposable
{
    private readonly TemporaryDirectory _site = new();
    private readonly TemporaryDirectory _offline = new();
    private readonly string _rootKey;
    private readonly string _passphraseFile;

    public OfflineRootTests()
    {
        _rootKey = Path.Combine(_offline.Path, "root.key.pem");
        _passphraseFile = Path.Combine(_offline.Path, "root.passphrase");
        File.WriteAllText(_passphraseFile, "a root passphrase kept in a safe\n");
    }

    [Fact]
    public async Task CaInit_ThenTheProxy_AdmitsMembersOfTheIntermediate_AndOfARotatedOne_RefusesRevokedOnesUnderEach_AndForeignOnes()
    {
        var init = await CliProcess.RunAsync(_site.Path, "ca", "init", "--root-key-out", _rootKey, "--root-passphrase-file", _passphraseFile);
        Assert.True(init.ExitCode == 0, init.Error);
        var paths = new CertificateAuthorityPaths(Path.Combine(_site.Path, "certs"));
        Assert.True(File.Exists(_rootKey));
        Assert.False(File.Exists(paths.CaPrivateKey));
        Assert.True(File.Exists(paths.IntermediatePrivateKey));
        AssertNoFileUnder(_site.Path, _rootKey);

        await using var proxy = await ProxyHost.StartAsync(root: _site.Path);

        // The proxy's first run issued the local credentials with the intermediate; they get in over
        // mutual TLS, and the client checks the proxy's certificate through the intermediate it sends.
        using var firstIntermediate = X509Certificate2.CreateFromPem(File.ReadAllText(paths.IntermediateCertificate));
        Assert.Equal(("Local Hospital", "consumer"), await WhoAsync(proxy.Client(ProxyRole.Consumer)));
        using var local = X509CertificateLoader.LoadPkcs12FromFile(proxy.CredentialPath(ProxyRole.Consumer), string.Empty);
        Assert.Equal(firstIntermediate.Subject, local.Issuer);
        var bergen = await IssueAsync("Bergen");
        Assert.Equal(firstIntermediate.Subject, bergen.Issuer);

        // A bad rotation (short passphrase) is refused in one line and changes nothing.
        var shortPassphrase = Path.Combine(_offline.Path, "short");
        File.WriteAllText(shortPassphrase, "short");
        var bad = await CliProcess.RunAsync(_site.Path, "ca", "rotate-intermediate", "--root-key", _rootKey, "--root-passphrase-file", shortPassphrase);
        Assert.Equal(2, bad.ExitCode);
        Assert.Single(bad.Error.Trim().Split('\n'));
        Assert.Equal(firstIntermediate.RawData, X509Certificate2.CreateFromPem(File.ReadAllText(paths.IntermediateCertificate)).RawData);

        // Rotated while the proxy runs: new members come from the new intermediate; nobody re-enrols.
        var rotated = await CliProcess.RunAsync(_site.Path, "ca", "rotate-intermediate", "--root-key", _rootKey, "--root-passphrase-file", _passphraseFile);
        Assert.True(rotated.ExitCode == 0, rotated.Error);
        using var secondIntermediate = X509Certificate2.CreateFromPem(File.ReadAllText(paths.IntermediateCertificate));
        Assert.NotEqual(firstIntermediate.Subject, secondIntermediate.Subject);
        var haukeland = await IssueAsync("Haukeland");
        var tromso = await IssueAsync("Tromso");
        Assert.Equal(secondIntermediate.Subject, haukeland.Issuer);
        Assert.Equal(("Haukeland", "consumer"), await WhoAsync(proxy.Client(haukeland)));
        Assert.Equal(("Bergen", "consumer"), await WhoAsync(proxy.Client(bergen)));
        Assert.Equal(("Local Hospital", "consumer"), await WhoAsync(proxy.Client(ProxyRole.Consumer)));

        // The running server followed the rotation: the admin API signs with the new intermediate too.
        using var stavangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=ignored", stavangerKey, HashAlgorithmName.SHA256).CreateSigningRequestPem();
        var signed = await proxy.Client(ProxyRole.Admin).IssueCertificateAsync("Stavanger", "consumer", validityDays: 30, csrPem: csr);
        using var stavangerPublic = X509Certificate2.CreateFromPem(signed.CertificatePem);
        using var stavanger = stavangerPublic.CopyWithPrivateKey(stavangerKey);
        Assert.Equal(secondIntermediate.Subject, stavanger.Issuer);
        Assert.Equal(("Stavanger", "consumer"), await WhoAsync(proxy.Client(stavanger)));

        // A revoked member under each intermediate is refused at the handshake; the others are not.
        foreach (var member in new[] { bergen, haukeland })
        {
            var revoked = await CliProcess.RunAsync(_site.Path, "ca", "revoke", CertificateSerial.Of(member), "--reason", "key-compromise");
            Assert.True(revoked.ExitCode == 0, revoked.Error);
        }

        await AssertRefusedAsync(proxy, bergen);
        await AssertRefusedAsync(proxy, haukeland);
        Assert.Equal(("Tromso", "consumer"), await WhoAsync(proxy.Client(tromso)));
        Assert.Equal(("Local Hospital", "consumer"), await WhoAsync(proxy.Client(ProxyRole.Consumer)));

        // Another federation's offline root and intermediate: refused.
        using var otherCerts = new TemporaryDirectory();
        var foreign = ProxyCertificateAuthority.CreateWithOfflineRoot(new CertificateAuthorityPaths(otherCerts.Path), "TrustedProxy Root CA", Path.Combine(_offline.Path, "other-root.key.pem"), "a root passphrase kept in a safe", "another intermediate passphrase", TimeProvider.System);
        using var stranger = foreign.IssueClient("Local Hospital", ProxyRole.Admin, TimeSpan.FromDays(1));
        await AssertRefusedAsync(proxy, stranger.Certificate);

        var audit = await File.ReadAllTextAsync(Path.Combine(_site.Path, "data", "audit", "audit.log"));
        Assert.Equal(2, audit.Split("\"ca-intermediate\"").Length - 1);
        await proxy.StopAsync(); // releases the data directory's lock, so that every file can be read
        AssertNoFileUnder(_site.Path, _rootKey);
    }

    [Fact]
    public async Task ATwoLevelInstallation_KeepsAdmittingItsMembers_AndRefusesARotationInOneLine()
    {
        // The shape 'tproxy init' and the first 'tproxy serve' make, as every installation before intermediates.
        await using var proxy = await ProxyHost.StartAsync(root: _site.Path);
        var paths = proxy.Certificates;
        Assert.True(File.Exists(paths.CaPrivateKey));
        Assert.False(paths.HasIntermediate);
        Assert.Equal(("Local Hospital", "consumer"), await WhoAsync(proxy.Client(ProxyRole.Consumer)));
        var member = await IssueAsync("Haukeland");
        Assert.Equal(proxy.CaCertificate.Subject, member.Issuer);
        Assert.Equal(("Haukeland", "consumer"), await WhoAsync(proxy.Client(member)));

        var refused = await CliProcess.RunAsync(_site.Path, "ca", "rotate-intermediate", "--root-key", paths.CaPrivateKey, "--root-passphrase-file", _passphraseFile);
        Assert.Equal(2, refused.ExitCode);
        Assert.Single(refused.Error.Trim().Split('\n'));
        Assert.Contains("no intermediate", refused.Error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(paths.IntermediatesDirectory));

        var revoked = await CliProcess.RunAsync(_site.Path, "ca", "revoke", CertificateSerial.Of(member), "--reason", "superseded");
        Assert.True(revoked.ExitCode == 0, revoked.Error);
        await AssertRefusedAsync(proxy, member);
        Assert.Equal(("Local Hospital", "consumer"), await WhoAsync(proxy.Client(ProxyRole.Consumer)));
    }

    [Fact]
    public async Task CaInit_WithTheRootKeyUnderTheServersDirectories_OrNoPassphrase_IsRefusedInOneLine_AndWritesNothing()
    {
        var underData = await CliProcess.RunAsync(_site.Path, "ca", "init", "--root-key-out", Path.Combine("data", "root.key.pem"), "--root-passphrase-file", _passphraseFile);
        var underCerts = await CliProcess.RunAsync(_site.Path, "ca", "init", "--root-key-out", Path.Combine(_site.Path, "certs", "offline", "root.key.pem"), "--root-passphrase-file", _passphraseFile);
        var noPassphrase = await CliProcess.RunAsync(_site.Path, "ca", "init", "--root-key-out", _rootKey);
        var noKeyOut = await CliProcess.RunAsync(_site.Path, "ca", "init", "--root-passphrase-file", _passphraseFile);

        foreach (var (exitCode, _, error) in new[] { underData, underCerts, noPassphrase, noKeyOut })
        {
            Assert.Equal(2, exitCode);
            Assert.Single(error.Trim().Split('\n'));
        }

        Assert.Contains("outside the server's directories", underData.Error, StringComparison.Ordinal);
        Assert.Contains("passphrase of at least", noPassphrase.Error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_site.Path));
        Assert.False(File.Exists(_rootKey));
    }

    public void Dispose()
    {
        _site.Dispose();
        _offline.Dispose();
    }

    private static async Task<(string, string)> WhoAsync(TrustedProxyClient client)
    {
        var me = await client.WhoAmIAsync();
        return (me.Organisation, me.Role);
    }

    private static async Task AssertRefusedAsync(ProxyHost proxy, X509Certificate2 certificate)
    {
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => proxy.Client(certificate).WhoAmIAsync());
        Assert.NotEqual(HttpStatusCode.OK, error.StatusCode);
    }

    // A member enrolled with the CLI, as an operator does; its PKCS#12 comes back with its key.
    private async Task<X509Certificate2> IssueAsync(string organisation)
    {
        var output = Path.Combine(_site.Path, "enrolled", organisation);
        var issued = await CliProcess.RunAsync(_site.Path, "ca", "issue", "--org", organisation, "--role", "consumer", "--days", "30", "--out", output);
        Assert.True(issued.ExitCode == 0, issued.Error);
        return X509CertificateLoader.LoadPkcs12FromFile(issued.Output.Trim().Split('\t')[1], string.Empty, X509KeyStorageFlags.EphemeralKeySet);
    }

    // The root key's bytes appear in no file under the site (a copy, a backup, a temporary file).
    private static void AssertNoFileUnder(string directory, string rootKey)
    {
        var key = File.ReadAllText(rootKey).Trim();
        using var rootPublic = ECDsa.Create();
        rootPublic.ImportFromEncryptedPem(key, "a root passphrase kept in a safe");
        var spki = rootPublic.ExportSubjectPublicKeyInfo();
        foreach (var file in Directory.GetFiles(directory, "*", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotContain(key, text, StringComparison.Ordinal);
            if (text.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
            {
                using var candidate = ECDsa.Create();
                try
                {
                    candidate.ImportFromEncryptedPem(text, "a root passphrase kept in a safe");
                }
                catch (CryptographicException)
                {
                    continue;
                }

                Assert.False(candidate.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(spki), $"{file} holds the root key");
            }
        }
    }
}
