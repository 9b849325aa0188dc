namespace TrustedProxy.Dicom;

/// <summary>What the streaming reader found next.</summary>
public enum DicomTokenKind
{
    /// <summary>An element with a value of defined length; the value is read, copied or skipped next.</summary>
    Element,

    /// <summary>A sequence (SQ, or UN of undefined length) opens; items follow.</summary>
    SequenceStart,

    /// <summary>An item opens inside a sequence.</summary>
    ItemStart,

    /// <summary>An item closes (by its length or by an item delimiter).</summary>
    ItemEnd,

    /// <summary>A sequence closes (by its length or by a sequence delimiter).</summary>
    SequenceEnd,

    /// <summary>Encapsulated (compressed) pixel data opens; fragments follow, the first being the basic offset table.</summary>
    EncapsulatedStart,

    /// <summary>One fragment of encapsulated pixel data; its value is read, copied or skipped next.</summary>
    Fragment,

    /// <summary>Encapsulated pixel data closes at its sequence delimiter.</summary>
    EncapsulatedEnd,
}

/// <summary>One step of the reader: the tag, VR and length as encoded, where it was, and how deep.</summary>
/// <param name="Kind">What was found.</param>
/// <param name="Tag">The element's tag; item and delimiter tokens carry the item/delimiter tag.</param>
/// <param name="VR">The VR as encoded (explicit) or assumed from the dictionary (implicit).</param>
/// <param name="Length">The encoded length; <see cref="UndefinedLength"/> when undefined.</param>
/// <param name="Offset">Byte offset of the element's tag.</param>
/// <param name="Depth">0 for top-level elements, one more inside each sequence.</param>
/// <param name="ByDelimiter">For end tokens: closed by an explicit delimiter item rather than by length.</param>
/// <param name="LengthMismatch">For the end of a defined-length item or sequence: its contents did not fill exactly the declared length (kept in <see cref="Length"/>).</param>
public readonly record struct DicomToken(DicomTokenKind Kind, DicomTag Tag, DicomVR VR, uint Length, long Offset, int Depth, bool ByDelimiter = false, bool LengthMismatch = false)
{
    public const uint UndefinedLength = 0xFFFFFFFF;

    public bool IsUndefinedLength => Length == UndefinedLength;
}
