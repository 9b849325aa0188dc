using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;

namespace TrustedProxy.Tests.Pseudonymization;

public sealed class IdentifierPseudonymizerTests
{
    [Fact]
    public void ThePseudonym_IsStableUnderOneKey_DiffersUnderAnother_AndHidesTheId()
    {
        var pseudonymizer = new IdentifierPseudonymizer(new byte[32]);
        var other = new IdentifierPseudonymizer(Enumerable.Repeat((byte)1, 32).ToArray());

        var pseudonym = pseudonymizer.Patient("1CT1");

        Assert.Equal(pseudonym, pseudonymizer.Patient(" 1CT1 "));
        Assert.NotEqual(pseudonym, other.Patient("1CT1"));
        Assert.NotEqual(pseudonym, pseudonymizer.Patient("1CT2"));
        Assert.Matches("^[0-9a-f]{32}$", pseudonym);
        Assert.DoesNotContain("1CT1", pseudonym, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void RecordHandles_AreRandomBase32_AndRecognised()
    {
        var handles = Enumerable.Range(0, 1000).Select(_ => RecordHandle.New()).ToList();

        Assert.All(handles, h => Assert.True(RecordHandle.IsWellFormed(h)));
        Assert.Equal(1000, handles.Distinct().Count());
        Assert.False(RecordHandle.IsWellFormed("../../etc/passwd"));
        Assert.False(RecordHandle.IsWellFormed(handles[0].ToUpperInvariant()));
    }
}
