using System.Globalization;
using UglyToad.PdfPig;

namespace TrustedProxy.Testing;

/// <summary>A PDF's text as PdfPig reads it back: per page, the words of each baseline joined by single spaces, top to bottom.</summary>
public static class PdfText
{
    public static IReadOnlyList<IReadOnlyList<string>> Lines(byte[] pdf)
    {
        using var document = PdfDocument.Open(pdf);
        return document.GetPages()
            .Select(page => (IReadOnlyList<string>)page.GetWords()
                .GroupBy(w => Math.Round(w.BoundingBox.Bottom, 0))
                .OrderByDescending(line => line.Key)
                .Select(line => string.Join(' ', line.OrderBy(w => w.BoundingBox.Left).Select(w => w.Text)))
                .ToList())
            .ToList();
    }

    /// <summary>Every line of every page, in order.</summary>
    public static IReadOnlyList<string> AllLines(byte[] pdf) => Lines(pdf).SelectMany(page => page).ToList();

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
