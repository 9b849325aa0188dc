using System.Buffers.Binary;
using System.Collections;
using System.Globalization;

namespace TrustedProxy.Dicom;

/// <summary>
/// An ordered set of elements (the order they were read in, which for a valid file is ascending
/// tag order; new elements are inserted in tag order). Knows its encoding, which numbers are
/// read with, and its character set, inherited from the enclosing data set unless it has its own.
/// </summary>
public sealed class DicomDataset : IReadOnlyList<DicomElement>
{
    private readonly List<DicomElement> _elements;
    private SpecificCharacterSet? _characterSet;

    public DicomDataset(DicomEncoding encoding, IEnumerable<DicomElement>? elements = null, DicomDataset? parent = null)
    {
        Encoding = encoding;
        Parent = parent;
        _elements = elements is null ? [] : [.. elements];
    }

    public DicomEncoding Encoding { get; internal set; }

    /// <summary>The data set this one is an item of, if any (for the inherited character set).</summary>
    public DicomDataset? Parent { get; }

    public int Count => _elements.Count;

    public DicomElement this[int index] => _elements[index];

    /// <summary>The character set text values are decoded with: this data set's own (0008,0005), or its parent's.</summary>
    public SpecificCharacterSet CharacterSet =>
        _characterSet ??= Find(DicomTag.SpecificCharacterSet) is { } own
            ? SpecificCharacterSet.Parse(DicomValues.DecodeAscii(own.Value.Span))
            : Parent?.CharacterSet ?? SpecificCharacterSet.Default;

    public DicomElement? Find(DicomTag tag)
    {
        foreach (var element in _elements)
        {
            if (element.Tag == tag)
            {
                return element;
            }
        }

        return null;
    }

    public bool Contains(DicomTag tag) => Find(tag) is not null;

    /// <summary>Replaces the element with the same tag, or inserts it in tag order.</summary>
    public void Set(DicomElement element)
    {
        for (var i = 0; i < _elements.Count; i++)
        {
            if (_elements[i].Tag == element.Tag)
            {
                _elements[i] = element;
                InvalidateCharacterSet(element.Tag);
                return;
            }

            if (_elements[i].Tag.CompareTo(element.Tag) > 0)
            {
                _elements.Insert(i, element);
                InvalidateCharacterSet(element.Tag);
                return;
            }
        }

        _elements.Add(element);
        InvalidateCharacterSet(element.Tag);
    }

    /// <summary>Appends an element as read, keeping the file's own order.</summary>
    internal void Append(DicomElement element) => _elements.Add(element);

    public bool Remove(DicomTag tag)
    {
        InvalidateCharacterSet(tag);
        return _elements.RemoveAll(e => e.Tag == tag) > 0;
    }

    public int RemoveAll(Predicate<DicomElement> match)
    {
        _characterSet = null;
        return _elements.RemoveAll(match);
    }

    /// <summary>Replaces every element at once (the elements given keep their order).</summary>
    public void ReplaceAll(IEnumerable<DicomElement> elements)
    {
        var replacement = elements.ToList();
        _elements.Clear();
        _elements.AddRange(replacement);
        _characterSet = null;
    }

    /// <summary>A text value decoded with the data set's character set, without padding; null if absent or empty.</summary>
    public string? GetString(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.IsEmpty)
        {
            return null;
        }

        var text = DicomValues.DecodeText(element.Value.Span, element.EffectiveVR, CharacterSet);
        return text.Length == 0 ? null : text;
    }

    /// <summary>The values of a multi-valued text element, split on backslash.</summary>
    public IReadOnlyList<string> GetStrings(DicomTag tag) => GetString(tag)?.Split('\\') ?? [];

    public ushort? GetUInt16(DicomTag tag)
    {
        var element = Find(tag);
        if (element is null || element.Value.Length < 2)
        {
            return null;
        }

        return Encoding.BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(element.Value.Span) : BinaryPrimitives.ReadUInt16LittleEndian(element.Value.Span);
    }

    /// <summary>An IS or DS value (first of several) as a number.</summary>
    public double? GetNumber(DicomTag tag) =>
        GetStrings(tag) is [var first, ..] && double.TryParse(first.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var number) ? number : null;

    public IEnumerator<DicomElement> GetEnumerator() => _elements.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private void InvalidateCharacterSet(DicomTag tag)
    {
        if (tag == DicomTag.SpecificCharacterSet)
        {
            _characterSet = null;
        }
    }
}
