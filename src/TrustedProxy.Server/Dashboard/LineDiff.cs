namespace TrustedProxy.Server.Dashboard;

/// <summary>How a line of a diff stands: in both texts, only in the new one, only in the old one.</summary>
internal enum DiffKind
{
    Same,
    Added,
    Removed,
}

/// <summary>One line of a diff, with its number in the old and in the new text (null where it is absent).</summary>
internal sealed record DiffLine(DiffKind Kind, string Text, int? OldNumber, int? NewNumber);

/// <summary>
/// A line diff for policy files: the longest common subsequence of lines, after the common head and
/// tail are set aside (an edit to a long file leaves a small middle). The table is
/// middle(old) × middle(new) cells, so the caller bounds it: beyond <c>maxCells</c> there is no diff.
/// </summary>
internal static class LineDiff
{
    /// <summary>The lines of <paramref name="oldText"/> and <paramref name="newText"/> in order, marked; null when the differing middles exceed <paramref name="maxCells"/>.</summary>
    public static IReadOnlyList<DiffLine>? Compute(string? oldText, string? newText, long maxCells)
    {
        var before = Lines(oldText);
        var after = Lines(newText);
        var head = 0;
        while (head < before.Length && head < after.Length && before[head] == after[head])
        {
            head++;
        }

        var tail = 0;
        while (tail < before.Length - head && tail < after.Length - head && before[^(tail + 1)] == after[^(tail + 1)])
        {
            tail++;
        }

        var n = before.Length - head - tail;
        var m = after.Length - head - tail;
        if ((long)n * m > maxCells)
        {
            return null;
        }

        // lcs[i, j]: the longest common subsequence of the middles' suffixes from i and j.
        var lcs = new int[n + 1, m + 1];
        for (var i = n - 1; i >= 0; i--)
        {
            for (var j = m - 1; j >= 0; j--)
            {
                lcs[i, j] = before[head + i] == after[head + j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        var diff = new List<DiffLine>(before.Length + after.Length);
        for (var k = 0; k < head; k++)
        {
            diff.Add(new DiffLine(DiffKind.Same, before[k], k + 1, k + 1));
        }

        int x = 0, y = 0;
        while (x < n || y < m)
        {
            if (x < n && y < m && before[head + x] == after[head + y])
            {
                diff.Add(new DiffLine(DiffKind.Same, before[head + x], head + x + 1, head + y + 1));
                x++;
                y++;
            }
            else if (x < n && (y == m || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                // On a tie the old line goes first, so an edited line reads as removed, then added.
                diff.Add(new DiffLine(DiffKind.Removed, before[head + x], head + x + 1, null));
                x++;
            }
            else
            {
                diff.Add(new DiffLine(DiffKind.Added, after[head + y], null, head + y + 1));
                y++;
            }
        }

        for (var k = 0; k < tail; k++)
        {
            diff.Add(new DiffLine(DiffKind.Same, before[head + n + k], head + n + k + 1, head + m + k + 1));
        }

        return diff;
    }

    /// <summary>
    /// A text's lines. Line endings are not part of a line (a file saved with CRLF compares equal to
    /// its LF twin); the final newline ends the last line rather than starting an empty one.
    /// </summary>
    public static string[] Lines(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return [];
        }

        var normalised = text.ReplaceLineEndings("\n");
        return (normalised.EndsWith('\n') ? normalised[..^1] : normalised).Split('\n');
    }
}
