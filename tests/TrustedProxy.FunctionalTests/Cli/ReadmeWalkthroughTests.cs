using System.Text;
using System.Text.RegularExpressions;

namespace TrustedProxy.FunctionalTests.Cli;

/// <summary>
/// The README's walkthrough, run as written: every <c>$ tproxy …</c> line between "## Walkthrough"
/// and "## Tasks", in order, against a proxy with the shipped policy, each printed line compared
/// with the lines the README shows under it (<c>…</c> stands for what differs between runs). The
/// example handle is the one the upload prints, <c>/tmp/</c> a fresh directory.
/// </summary>
public sealed partial class ReadmeWalkthroughTests : ProxyTest
{
    private const string ExampleHandle = "dhabxnd5er4ct6uxl3iojri7oq";
    private const string ExampleCorpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files/";

    [Fact]
    public async Task TheWalkthroughsCommands_PrintWhatTheReadmeShows()
    {
        using var tmp = new TemporaryDirectory();
        var steps = Steps(File.ReadAllText(Repository.Path("README.md")));
        Assert.Contains(steps, s => s.Command.StartsWith("tproxy trace", StringComparison.Ordinal));
        string? handle = null;

        foreach (var (command, expected) in steps)
        {
            var arguments = Words(Substitute(command, handle, tmp.Path)).Skip(1).ToList();
            // The CA and key-escrow commands work on the files, not through the proxy.
            if (arguments[0] is not ("ca" or "keys"))
            {
                arguments.AddRange(["--server", Proxy.BaseAddress.ToString()]);
            }

            var (_, output, error) = await CliProcess.RunAsync(Proxy.Root, [.. arguments]);
            var printed = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
            if (arguments[0] == "upload" && handle is null)
            {
                handle = printed.Single().Split('\t')[0];
            }

            var wanted = expected.Select(e => Substitute(e, handle, tmp.Path)).ToList();
            Assert.True(wanted.Count == 0 || wanted.Count == printed.Count, $"'{command}' printed {printed.Count} line(s), the README shows {wanted.Count}:\n{output}{error}");
            foreach (var (line, shown) in printed.Zip(wanted))
            {
                Assert.True(Pattern(shown).IsMatch(line), $"'{command}' printed\n  {line}\nthe README shows\n  {shown}\n{error}");
            }
        }
    }

    /// <summary>Each "$ tproxy" line of the walkthrough's shell blocks with the lines shown under it.</summary>
    private static List<(string Command, List<string> Expected)> Steps(string readme)
    {
        var start = readme.IndexOf("## Walkthrough", StringComparison.Ordinal);
        var walkthrough = readme[start..readme.IndexOf("## Tasks", start, StringComparison.Ordinal)];
        var steps = new List<(string, List<string>)>();
        List<string>? current = null;
        var inBlock = false;
        foreach (var line in walkthrough.Split('\n'))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock;
                current = null;
            }
            else if (inBlock && line.StartsWith("$ ", StringComparison.Ordinal))
            {
                // Other commands (curl, ls) are shown with their output too; only the proxy's own are run.
                current = line.StartsWith("$ tproxy ", StringComparison.Ordinal) ? [] : null;
                if (current is not null)
                {
                    steps.Add((line[2..].Trim(), current));
                }
            }
            else if (inBlock && current is not null && line.Length > 0)
            {
                current.Add(line);
            }
        }

        return steps;
    }

    private static string Substitute(string text, string? handle, string tmp)
    {
        text = text.Replace("/tmp/", tmp + "/", StringComparison.Ordinal).Replace(ExampleCorpus, DicomCorpus.TestFiles + "/", StringComparison.Ordinal);
        return handle is null ? text : text.Replace(ExampleHandle, handle, StringComparison.Ordinal);
    }

    // A shell's words, as far as the README uses them: spaces, and double quotes around a word with spaces.
    private static IEnumerable<string> Words(string line)
    {
        var word = new StringBuilder();
        var quoted = false;
        foreach (var c in line + " ")
        {
            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == ' ' && !quoted)
            {
                if (word.Length > 0)
                {
                    yield return word.ToString();
                    word.Clear();
                }
            }
            else
            {
                word.Append(c);
            }
        }
    }

    private static Regex Pattern(string shown) =>
        new("^" + string.Join(".+?", shown.Split('…').Select(Regex.Escape)) + "$", RegexOptions.CultureInvariant);
}
