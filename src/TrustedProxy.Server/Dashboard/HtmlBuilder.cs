using System.Text;
using System.Text.Encodings.Web;
using System.Text.Unicode;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// Writes an HTML document in which markup comes only from this code's literals and every value
/// (text and attribute values alike) passes the HTML encoder, so that nothing a caller, a
/// certificate or the decision log supplies can open a tag, end an attribute or start a script.
/// Elements close in order through the scopes <see cref="Open"/> returns.
/// </summary>
internal sealed class HtmlBuilder
{
    // Every script in the world is readable text; only the HTML-significant characters are escaped.
    private static readonly HtmlEncoder Encoder = HtmlEncoder.Create(UnicodeRanges.All);

    private readonly StringBuilder _html = new("<!DOCTYPE html>\n");

    /// <summary>Opens an element; disposing the scope closes it. Attributes with a null value are left out.</summary>
    public Scope Open(string tag, params ReadOnlySpan<(string Name, string? Value)> attributes)
    {
        StartTag(tag, attributes);
        return new Scope(this, tag);
    }

    /// <summary>An element holding only text.</summary>
    public HtmlBuilder Element(string tag, string? text, params ReadOnlySpan<(string Name, string? Value)> attributes)
    {
        StartTag(tag, attributes);
        Text(text);
        _html.Append("</").Append(tag).Append('>');
        return this;
    }

    /// <summary>An element without content or end tag (input, meta, link, br).</summary>
    public HtmlBuilder Void(string tag, params ReadOnlySpan<(string Name, string? Value)> attributes)
    {
        StartTag(tag, attributes);
        return this;
    }

    public HtmlBuilder Text(string? text)
    {
        if (!string.IsNullOrEmpty(text))
        {
            _html.Append(Encoder.Encode(text));
        }

        return this;
    }

    public override string ToString() => _html.ToString();

    private void StartTag(string tag, ReadOnlySpan<(string Name, string? Value)> attributes)
    {
        _html.Append('<').Append(CheckName(tag));
        foreach (var (name, value) in attributes)
        {
            if (value is null)
            {
                continue;
            }

            _html.Append(' ').Append(CheckName(name)).Append("=\"");
            Text(value);
            _html.Append('"');
        }

        _html.Append('>');
    }

    // Names are literals of this code; checking them keeps even a slip from becoming markup.
    private static string CheckName(string name) =>
        name.Length > 0 && char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
            ? name
            : throw new ArgumentException($"'{name}' is not an element or attribute name this builder writes", nameof(name));

    public readonly struct Scope(HtmlBuilder builder, string tag) : IDisposable
    {
        public void Dispose() => builder._html.Append("</").Append(tag).Append('>');
    }
}
