using System.Buffers.Binary;

namespace TrustedProxy.Dicom;

/// <summary>
/// One element of a data set: its tag and VR, and exactly one of a value (the bytes as encoded,
/// padding and odd lengths included), a sequence of items, or encapsulated pixel data fragments.
/// Immutable; a data set changes by replacing elements.
/// </summary>
public sealed class DicomElement
{
    private DicomElement(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value, DicomSequence? sequence, DicomFragments? fragments, long deferredLength)
    {
        Tag = tag;
        VR = vr;
        Value = value;
        Sequence = sequence;
        Fragments = fragments;
        DeferredLength = deferredLength;
    }

    public DicomTag Tag { get; }

    /// <summary>The VR as encoded (or, in implicit VR, as the dictionary gives it).</summary>
    public DicomVR VR { get; }

    /// <summary>
    /// The VR to interpret the value with: a standard attribute encoded as UN (as some writers do
    /// when they do not know it) is read with its dictionary VR, as the well-known toolkits do.
    /// The element is still written back as UN.
    /// </summary>
    public DicomVR EffectiveVR => VR == DicomVR.UN && Sequence is null && !Tag.IsPrivate && DicomDictionary.Find(Tag) is { } entry
        ? entry.DefaultVR
        : VR;

    /// <summary>The value's bytes as encoded, in the data set's byte order. Empty for sequences and fragments.</summary>
    public ReadOnlyMemory<byte> Value { get; }

    public DicomSequence? Sequence { get; }

    public DicomFragments? Fragments { get; }

    /// <summary>
    /// When reading a stream, a value too large to hold is left in the stream: this is its length,
    /// and the reader that returned the element streams it on request. −1 for every held value.
    /// </summary>
    public long DeferredLength { get; }

    public bool IsDeferred => DeferredLength >= 0;

    public static DicomElement Create(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value) => new(tag, vr, value, null, null, -1);

    public static DicomElement Create(DicomTag tag, DicomSequence sequence, DicomVR? vr = null) => new(tag, vr ?? DicomVR.SQ, default, sequence, null, -1);

    public static DicomElement Create(DicomTag tag, DicomVR vr, DicomFragments fragments) => new(tag, vr, default, null, fragments, -1);

    internal static DicomElement Deferred(DicomTag tag, DicomVR vr, long length, bool encapsulated) =>
        new(tag, vr, default, null, encapsulated ? DicomFragments.DeferredMarker : null, length);

    /// <summary>A text element, padded to even length as its VR requires (UI with NUL, others with space).</summary>
    public static DicomElement Text(DicomTag tag, DicomVR vr, string value, SpecificCharacterSet? characterSet = null) =>
        Create(tag, vr, DicomValues.EncodeText(value, vr, characterSet));

    public static DicomElement UInt16(DicomTag tag, ushort value, DicomEncoding encoding)
    {
        var bytes = new byte[2];
        if (encoding.BigEndian)
        {
            BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        }

        return Create(tag, DicomVR.US, bytes);
    }

    public override string ToString() =>
        $"{Tag} {VR} {(Sequence is not null ? $"{Sequence.Items.Count} item(s)" : Fragments is not null ? "fragments" : IsDeferred ? $"{DeferredLength} bytes (deferred)" : $"{Value.Length} bytes")}";
}

/// <summary>The items of a sequence, and how it was encoded.</summary>
/// <param name="Items">The items in order.</param>
/// <param name="UndefinedLength">Encoded with an undefined length and a sequence delimiter.</param>
/// <param name="InconsistentDeclaredLength">
/// Only for a sequence read from a file whose declared length did not match its items: that length,
/// written back so the file round-trips. A sequence built or rebuilt by the proxy has none, and its length is computed.
/// </param>
public sealed record DicomSequence(IReadOnlyList<DicomItem> Items, bool UndefinedLength = true, uint? InconsistentDeclaredLength = null);

/// <summary>One item of a sequence: a nested data set, and whether it was encoded with an undefined length.</summary>
/// <param name="Dataset">The item's elements.</param>
/// <param name="UndefinedLength">Encoded with an undefined length and an item delimiter.</param>
/// <param name="InconsistentDeclaredLength">As for <see cref="DicomSequence"/>: a stale length read from a file, kept for the round trip.</param>
public sealed record DicomItem(DicomDataset Dataset, bool UndefinedLength = true, uint? InconsistentDeclaredLength = null);

/// <summary>Encapsulated pixel data: the basic offset table (first item, may be empty) and the fragments, kept as they are.</summary>
public sealed record DicomFragments(IReadOnlyList<ReadOnlyMemory<byte>> Items)
{
    internal static readonly DicomFragments DeferredMarker = new([]);

    public ReadOnlyMemory<byte> BasicOffsetTable => Items.Count > 0 ? Items[0] : default;
}
