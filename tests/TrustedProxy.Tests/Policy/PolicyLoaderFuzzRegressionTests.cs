using TrustedProxy.Policy;
using TrustedProxy.Testing;

namespace TrustedProxy.Tests.Policy;

/// <summary>
/// Inputs the fuzz campaign (docs/fuzzing.md, target policy) found escaping the loader as something
/// other than a <see cref="PolicyLoadException"/>: YamlDotNet's InvalidOperationException and
/// ArgumentException on malformed text. Each is kept as bytes in FuzzRegressions/ and must now be
/// refused like any invalid policy file, with the file named.
/// </summary>
public sealed class PolicyLoaderFuzzRegressionTests
{
    public static TheoryData<string> Inputs => new(Directory.EnumerateFiles(Repository.Path("tests", "TrustedProxy.Tests", "Policy", "FuzzRegressions")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Inputs))]
    public void FuzzFinding_IsRefusedAsInvalidYaml(string name)
    {
        var bytes = File.ReadAllBytes(Repository.Path("tests", "TrustedProxy.Tests", "Policy", "FuzzRegressions", name));
        var errors = new List<PolicyError>();
        var file = PolicyLoader.Decode(name, bytes, new PolicyOptions(), errors);
        Assert.NotNull(file);

        var refused = Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load([file]));

        var error = Assert.Single(refused.Errors);
        Assert.Equal(name, error.File);
        Assert.StartsWith("not valid YAML", error.Message, StringComparison.Ordinal);
    }
}
