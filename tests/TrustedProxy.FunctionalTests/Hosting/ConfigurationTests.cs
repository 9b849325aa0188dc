using TrustedProxy.Server.Hosting;

namespace TrustedProxy.FunctionalTests.Hosting;

public sealed class ConfigurationTests
{
    [Fact]
    public async Task AnInvalidConfiguration_StopsTheStart_ListingEveryProblemAtOnce()
    {
        using var directory = new TemporaryDirectory();

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Server:Urls:0"] = "http://127.0.0.1:8080",
                ["TrustedProxy:Records:SegmentSize"] = "10",
                ["TrustedProxy:Dicom:MaxSequenceDepth"] = "0",
                ["TrustedProxy:Storage:Backend"] = "filesystem",
            },
        }));

        Assert.Equal(4, error.Errors.Count);
        Assert.Contains(error.Errors, e => e.Contains("https"));
        Assert.Contains(error.Errors, e => e.Contains("SegmentSize"));
        Assert.Contains(error.Errors, e => e.Contains("MaxSequenceDepth"));
        Assert.Contains(error.Errors, e => e.Contains("TrustedProxy:Policy:Directory") && e.Contains("does not exist"));
        Assert.False(Directory.Exists(Path.Combine(directory.Path, "certs")), "nothing is created before the configuration is valid");
    }

    [Fact]
    public async Task ADuplicateInstancePolicy_OtherThanKeepFirstReplaceOrKeepAll_StopsTheStart()
    {
        using var directory = new TemporaryDirectory();

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
                ["TrustedProxy:Records:DuplicateInstance"] = "keep-some",
                ["TrustedProxy:Storage:Backend"] = "filesystem",
                ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
            },
        }));

        Assert.Equal("TrustedProxy:Records:DuplicateInstance: DuplicateInstance must be keep-first, replace or keep-all", Assert.Single(error.Errors));
    }

    [Fact]
    public async Task TheShippedConfiguration_IsValid_AndTheProxyStartsWithIt()
    {
        using var directory = new TemporaryDirectory();

        await using var app = await ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            ConfigurationFile = Repository.Path("config", "appsettings.json"),

            // The shipped configuration names config/policies under the content root (a checkout); here that is the repository's.
            Overrides = new Dictionary<string, string?> { ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0", ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies") },
        });

        var profiles = ((Microsoft.Extensions.Options.IOptions<TrustedProxy.Deidentification.DeidentificationSettings>)app.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<TrustedProxy.Deidentification.DeidentificationSettings>))!).Value;
        Assert.Contains("longitudinal", profiles.ByName.Keys);
        Assert.True(File.Exists(Path.Combine(directory.Path, "certs", "ca", "ca.crt.pem")));
    }

    [Fact]
    public async Task AnInvalidPolicyFile_StopsTheStart_AtItsFileLineAndColumn()
    {
        using var directory = new TemporaryDirectory();
        var policies = Directory.CreateDirectory(Path.Combine(directory.Path, "config", "policies")).FullName;
        File.WriteAllText(Path.Combine(policies, "10-roles.yaml"), "version: 1\nrules:\n  - id: r\n    effect: permit\n    obligations:\n      view: deidentified\n      profile: longitudinal\n");

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?> { ["TrustedProxy:Storage:Backend"] = "filesystem", ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0" },
        }));

        // No profile 'longitudinal' is configured here: the file is checked against the configuration it runs with.
        Assert.Equal("TrustedProxy:Policy:Directory: 10-roles.yaml:7:16: no de-identification profile is named 'longitudinal' (TrustedProxy:Deidentification:Profiles has basic)", Assert.Single(error.Errors));
        Assert.False(Directory.Exists(Path.Combine(directory.Path, "certs")), "nothing is created before the policy is valid");
    }

    [Fact]
    public async Task AnUnknownBackend_StopsTheStart()
    {
        using var directory = new TemporaryDirectory();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?> { ["TrustedProxy:Storage:Backend"] = "tape", ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0", ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies") },
        }));

        Assert.Contains("tape", error.Message);
    }

    [Theory]
    [InlineData("http://proxy.hospital.example")]
    [InlineData("https://proxy.hospital.example/?next=elsewhere")]
    [InlineData("https://user@proxy.hospital.example")]
    [InlineData("proxy.hospital.example")]
    public async Task APublicBaseAddressThatIsNotAPlainHttpsAddress_StopsTheStart(string address)
    {
        using var directory = new TemporaryDirectory();

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
        {
            ContentRoot = directory.Path,
            Overrides = new Dictionary<string, string?>
            {
                ["TrustedProxy:Storage:Backend"] = "filesystem",
                ["TrustedProxy:Server:Urls:0"] = "https://127.0.0.1:0",
                ["TrustedProxy:Server:PublicBaseAddress"] = address,
                ["TrustedProxy:Policy:Directory"] = Repository.Path("config", "policies"),
            },
        }));

        Assert.Contains(error.Errors, e => e.StartsWith("TrustedProxy:Server:PublicBaseAddress", StringComparison.Ordinal));
    }
}
