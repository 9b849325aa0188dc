using System.Globalization;
using System.Text;

namespace TrustedProxy.Server.Hosting;

/// <summary>
/// What the server's logs may carry from a request. A value a caller chose goes through
/// <see cref="Escape"/>, so that a CR or LF cannot forge a log line and a bidirectional override
/// cannot disguise one; a request is named by its route pattern (<see cref="Route"/>), never its
/// raw path, which holds DICOM UIDs and other identifiers.
/// </summary>
internal static class LogText
{
    /// <summary>Control characters (C0, DEL, C1), line and paragraph separators and bidirectional controls as <c>\uXXXX</c>; a backslash doubled, so escapes stay unambiguous.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text) || !text.AsSpan().ContainsAny(NeedsEscaping))
        {
            return text ?? string.Empty;
        }

        var escaped = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\\' => escaped.Append(@"\\"),
                '\r' => escaped.Append(@"\r"),
                '\n' => escaped.Append(@"\n"),
                '\t' => escaped.Append(@"\t"),
                _ when IsUnsafe(c) => escaped.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => escaped.Append(c),
            };
        }

        return escaped.ToString();
    }

    /// <summary>The request as its endpoint's route pattern (<c>GET /dicomweb/studies/{study}</c>), or only the method when no route matched.</summary>
    public static string Route(HttpContext context) =>
        context.GetEndpoint() is RouteEndpoint route ? $"{context.Request.Method} {route.RoutePattern.RawText}" : $"{context.Request.Method} (no route)";

    private static readonly System.Buffers.SearchValues<char> NeedsEscaping = System.Buffers.SearchValues.Create(
        Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Concat([0x5C, 0x2028, 0x2029, 0x200E, 0x200F, 0x061C])
            .Concat(Enumerable.Range(0x202A, 5)).Concat(Enumerable.Range(0x2066, 4)).Select(i => (char)i).ToArray());

    private static bool IsUnsafe(char c) => NeedsEscaping.Contains(c);
}
