using TrustedProxy.Server.Dashboard;

namespace TrustedProxy.Tests.Dashboard;

public sealed class LineDiffTests
{
    private static string Render(IReadOnlyList<DiffLine>? diff) =>
        string.Join("|", diff!.Select(l => $"{(l.Kind switch { DiffKind.Added => "+", DiffKind.Removed => "-", _ => " " })}{l.Text}:{l.OldNumber?.ToString() ?? "_"}:{l.NewNumber?.ToString() ?? "_"}"));

    [Fact]
    public void AnEditedLine_IsOneRemovedAndOneAddedLine_BetweenUnchangedOnesNumberedOnBothSides()
    {
        var diff = LineDiff.Compute("a\nb\nc\n", "a\nB\nc\n", maxCells: 100);

        Assert.Equal(" a:1:1|-b:2:_|+B:_:2| c:3:3", Render(diff));
    }

    [Fact]
    public void InsertionsAndDeletionsInTheMiddle_KeepTheLongestCommonSubsequence()
    {
        var diff = LineDiff.Compute("x\na\nb\nc\nd\ny", "x\nb\na\nc\ne\nd\ny", maxCells: 100);

        Assert.Equal(" x:1:1|-a:2:_| b:3:2|+a:_:3| c:4:4|+e:_:5| d:5:6| y:6:7", Render(diff));
        Assert.Equal(5, diff!.Count(l => l.Kind == DiffKind.Same));
    }

    [Fact]
    public void AFileAddedOrRemoved_IsAllAddedOrAllRemoved_AndIdenticalTextsHaveNoChange()
    {
        Assert.Equal("+a:_:1|+b:_:2", Render(LineDiff.Compute(null, "a\nb\n", maxCells: 10)));
        Assert.Equal("-a:1:_|-b:2:_", Render(LineDiff.Compute("a\nb", null, maxCells: 10)));
        Assert.All(LineDiff.Compute("a\r\nb\r\n", "a\nb\n", maxCells: 0)!, l => Assert.Equal(DiffKind.Same, l.Kind));
    }

    [Fact]
    public void ATrailingBlankLine_IsALine()
    {
        Assert.Equal(" a:1:1|+:_:2", Render(LineDiff.Compute("a\n", "a\n\n", maxCells: 10)));
    }

    [Fact]
    public void AChangeLargerThanTheCellLimit_HasNoDiff_WhileTheCommonHeadAndTailAreNotCounted()
    {
        var head = string.Concat(Enumerable.Range(0, 1000).Select(i => $"line {i}\n"));

        Assert.Null(LineDiff.Compute("a\nb\nc", "d\ne\nf", maxCells: 8));
        Assert.NotNull(LineDiff.Compute("a\nb\nc", "d\ne\nf", maxCells: 9));
        var edited = LineDiff.Compute(head + "old\n" + head, head + "new\n" + head, maxCells: 1)!;
        Assert.Equal(2002, edited.Count);
        Assert.Equal([(DiffKind.Removed, "old", (int?)1001, (int?)null), (DiffKind.Added, "new", null, 1001)], edited.Where(l => l.Kind != DiffKind.Same).Select(l => (l.Kind, l.Text, l.OldNumber, l.NewNumber)));
    }
}
