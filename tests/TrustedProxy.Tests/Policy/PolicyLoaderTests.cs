using System.Text;
using TrustedProxy.Policy;

namespace TrustedProxy.Tests.Policy;

public sealed class PolicyLoaderTests
{
    private const string Header = "version: 1\nrules:\n";

    private static PolicyError SingleError(string content, string name = "a.yaml") =>
        Assert.Single(Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load([new PolicyFile(name, content)])).Errors);

    [Theory]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: alow\n", 4, 13, "'alow' is not a valid effect")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    rolez: [consumer]\n", 5, 5, "unknown key 'rolez' in a rule")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    roles: [consumer, nurse]\n", 5, 23, "'nurse' is not one of the roles")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    actions: [read]\n", 5, 15, "'read' is not one of the actions")]
    [InlineData("version: 1\nrules:\n  - id: R1\n    effect: permit\n", 3, 9, "id 'R1' is not lowercase")]
    [InlineData("version: 1\nrules:\n  - effect: permit\n", 3, 5, "'id' is missing")]
    [InlineData("version: 1\nrules:\n  - id: r\n", 3, 5, "'effect' is missing")]
    [InlineData("version: 2\nrules: []\n", 1, 10, "version 2 is not the format")]
    [InlineData("rules:\n  - id: r\n    effect: permit\n", 1, 1, "'version' is missing")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: deny\n    obligations:\n      fingerprint: true\n", 6, 7, "a deny carries no obligations")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: oblige\n", 3, 5, "an oblige rule needs 'obligations'")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: deny\n    breakGlass: true\n", 5, 17, "only a permit may say 'breakGlass'")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    obligations:\n      profile: basic\n", 6, 16, "a profile goes with 'view: deidentified'")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: oblige\n    obligations:\n      minObliviousSet: 0\n", 6, 24, "'minObliviousSet' is a whole number from 1 to 65536")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    roles: []\n", 5, 12, "'roles' is empty")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    roles: [consumer, consumer]\n", 5, 23, "'consumer' is listed twice")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    time:\n      from: \"25:00\"\n      to: \"08:00\"\n", 6, 13, "'from' is a time of day as HH:mm")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    time:\n      from: \"08:00\"\n", 6, 7, "names both 'from' and 'to'")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    time:\n      days: [mon]\n      timezone: Mars/Olympus\n", 7, 17, "time zone 'Mars/Olympus' is not known")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: deny\n    record:\n      studyDate:\n        from: 2020-01-01\n        to: 2019-01-01\n", 7, 15, "'from' is after 'to'")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: deny\n    record:\n      origin: mine\n", 6, 15, "'mine' is not a valid origin")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: deny\n    record: {}\n", 5, 13, "'record' names no condition")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    overrides: [nothing-here]\n", 5, 17, "overrides 'nothing-here', which no rule or consent entry is called")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    roles: [consumer\n", 6, 1, "not valid YAML")]
    [InlineData("version: 1\nrules:\n  - &shared\n    id: r\n    effect: permit\n  - *shared\n", 3, 5, "anchors and aliases are not accepted")]
    [InlineData("version: 1\nrules:\n  - id: r\n    effect: permit\n    effect: deny\n", 5, 5, "Duplicate key")]
    [InlineData("version: 1\nrules:\n  - id: default-deny\n    effect: permit\n", 3, 9, "reserved")]
    [InlineData("", 0, 0, "the file is empty")]
    [InlineData("- id: r\n", 1, 1, "a policy file is a mapping")]
    public void AnInvalidFile_IsRefused_WithFileLineAndColumn(string content, int line, int column, string message)
    {
        var error = SingleError(content);

        Assert.Equal("a.yaml", error.File);
        Assert.True(error.Line == line && error.Column == column, $"at {error.Line}:{error.Column}, expected {line}:{column}: {error}");
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith(line > 0 ? $"a.yaml:{line}:{column}: " : "a.yaml: ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void EveryProblemOfEveryFile_IsReported_AtOnce()
    {
        var errors = Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load(
        [
            new PolicyFile("a.yaml", Header + "  - id: r\n    effect: maybe\n  - id: s\n    effect: permit\n    roles: [nurse]\n"),
            new PolicyFile("b.yaml", Header + "  - id: t\n    effect: permit\n    colour: red\n"),
        ])).Errors;

        Assert.Equal(["a.yaml:4:13", "a.yaml:7:13", "b.yaml:5:5"], errors.Select(e => $"{e.File}:{e.Line}:{e.Column}"));
    }

    [Fact]
    public void ARuleIdUsedTwice_AcrossFiles_IsRefusedAtTheSecond()
    {
        var error = Assert.Single(Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load(
        [
            new PolicyFile("a.yaml", Header + "  - id: r\n    effect: permit\n"),
            new PolicyFile("b.yaml", "version: 1\nconsent:\n  - id: r\n    patient: 0a1b2c3d4e5f60718293a4b5c6d7e8f9\n"),
        ])).Errors);

        Assert.Equal("b.yaml:3:9: id 'r' is already used at a.yaml:3; ids name one rule or consent entry each", error.ToString());
    }

    [Fact]
    public void OverridingAPermit_IsRefused_OnlyDeniesCanBeOverridden()
    {
        var error = SingleError(Header + "  - id: p\n    effect: permit\n  - id: q\n    effect: permit\n    overrides: [p]\n");

        Assert.Equal((7, 17), (error.Line, error.Column));
        Assert.Contains("not a deny", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AConsentEntryWithAPatientId_IsRefused_WithoutEchoingIt()
    {
        var error = SingleError("version: 1\nconsent:\n  - id: c\n    patient: NORWAY-12345678901\n");

        Assert.Equal((4, 14), (error.Line, error.Column));
        Assert.DoesNotContain("NORWAY", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("pseudonym", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnknownProfile_IsRefused_WhenTheConfiguredProfilesAreKnown()
    {
        var content = Header + "  - id: r\n    effect: oblige\n    obligations:\n      view: deidentified\n      profile: secret-sauce\n";

        Assert.NotNull(PolicyLoader.Load([new PolicyFile("a.yaml", content)]));
        var error = Assert.Single(Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load([new PolicyFile("a.yaml", content)], new HashSet<string> { "basic" })).Errors);
        Assert.Equal((7, 16), (error.Line, error.Column));
        Assert.Contains("no de-identification profile is named 'secret-sauce'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASetWithoutRules_IsRefused_ForItWouldDenyEverything() =>
        Assert.Contains("holds no rules", SingleError("version: 1\ndescription: nothing yet\n").Message, StringComparison.Ordinal);

    [Fact]
    public void ADirectory_IsReadInNameOrder_YamlFilesOnly_AndItsVersionIsTheHashOfNamesAndTexts()
    {
        using var directory = new TemporaryDirectory();
        File.WriteAllText(Path.Combine(directory.Path, "20-b.yml"), Header + "  - id: b\n    effect: permit\n");
        File.WriteAllText(Path.Combine(directory.Path, "10-a.yaml"), Header + "  - id: a\n    effect: permit\n");
        File.WriteAllText(Path.Combine(directory.Path, "notes.txt"), "not a policy");
        File.WriteAllText(Path.Combine(directory.Path, ".10-a.yaml.swp"), "an editor's swap file");

        var set = PolicyLoader.LoadDirectory(directory.Path, new PolicyOptions());

        Assert.Equal(["10-a.yaml", "20-b.yml"], set.Files.Select(f => f.Name));
        Assert.Equal(["a", "b"], set.Rules.Select(r => r.Id));
        Assert.Equal("10-a.yaml:3", set.Rules[0].Source);
        Assert.Equal(PolicySet.ComputeVersion(set.Files), set.Version);
        File.AppendAllText(Path.Combine(directory.Path, "20-b.yml"), "# a comment changes the version\n");
        Assert.NotEqual(set.Version, PolicyLoader.LoadDirectory(directory.Path, new PolicyOptions()).Version);
    }

    [Fact]
    public void ADirectoryThatIsMissingEmptyTooLargeOrNotUtf8_IsRefused()
    {
        using var directory = new TemporaryDirectory();
        var options = new PolicyOptions { MaxFileBytes = 1024 };

        Assert.Contains("does not exist", Assert.Throws<PolicyLoadException>(() => PolicyLoader.LoadDirectory(Path.Combine(directory.Path, "none"), options)).Message, StringComparison.Ordinal);
        Assert.Contains("holds no *.yaml", Assert.Throws<PolicyLoadException>(() => PolicyLoader.LoadDirectory(directory.Path, options)).Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(directory.Path, "big.yaml"), Header + new string('#', 2000));
        Assert.Contains("more than the 1024", Assert.Throws<PolicyLoadException>(() => PolicyLoader.LoadDirectory(directory.Path, options)).Message, StringComparison.Ordinal);
        File.Delete(Path.Combine(directory.Path, "big.yaml"));
        File.WriteAllBytes(Path.Combine(directory.Path, "latin1.yaml"), [.. Encoding.ASCII.GetBytes("version: 1 # caf"), 0xE9, (byte)'\n']);
        Assert.Contains("not UTF-8", Assert.Throws<PolicyLoadException>(() => PolicyLoader.LoadDirectory(directory.Path, options)).Message, StringComparison.Ordinal);
    }
}
