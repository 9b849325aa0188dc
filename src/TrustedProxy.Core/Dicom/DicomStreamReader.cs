using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace TrustedProxy.Dicom;

/// <summary>
/// A forward-only, streaming reader of DICOM Part 10 files: preamble, file meta information and
/// the data set in any of the four native encodings (implicit/explicit VR, little/big endian,
/// deflated), with sequences and encapsulated pixel data of defined or undefined length.
/// </summary>
/// <remarks>
/// Nesting is tracked on an explicit stack, never by recursion, so a file with thousands of
/// nested sequences meets <see cref="DicomReaderLimits.MaxSequenceDepth"/> instead of the
/// process's stack. Values are never read unless asked for: a caller that does not read a value
/// gets it skipped, streamed through in bounded chunks.
/// </remarks>
internal sealed class DicomStreamReader : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;
    private static readonly byte[] Magic = "DICM"u8.ToArray();

    private readonly DicomReaderLimits _limits;
    private readonly List<Frame> _frames = [];
    private Stream _source;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _position;
    private int _end;
    private bool _sourceEnded;
    private long _offset;
    private bool _implicitVR;
    private bool _bigEndian;
    private bool _firstDataSetElement = true;
    private long _pendingValue;
    private long _elements;

    public DicomStreamReader(Stream source, DicomReaderLimits? limits = null, bool keepDeflatedPayload = false)
    {
        _source = source;
        _limits = limits ?? DicomReaderLimits.Default;
        _keepDeflatedPayload = keepDeflatedPayload;
    }

    private readonly bool _keepDeflatedPayload;
    private bool _inflating;
    private MemoryStream? _deflatedPayload;

    /// <summary>How elements at the current position are encoded (after the first element, the encoding the data set really uses).</summary>
    public DicomEncoding CurrentEncoding => new(_implicitVR, _bigEndian);

    /// <summary>The compressed bytes of a deflated data set, when asked to keep them (to write an unmodified file back bit for bit).</summary>
    public byte[]? DeflatedPayload => _deflatedPayload?.ToArray();

    public FileMetaInformation? Meta { get; private set; }

    /// <summary>Bytes of the current element's or fragment's value not yet consumed.</summary>
    public long PendingValueLength => _pendingValue;

    /// <summary>Offset of the next byte to be read.</summary>
    public long Offset => _offset;

    public int Depth => _frames.Count;

    /// <summary>Reads and checks the preamble, "DICM" and the file meta information group.</summary>
    public async ValueTask<FileMetaInformation> ReadFileMetaAsync(CancellationToken cancellationToken = default)
    {
        if (!await TryFillAsync(132, cancellationToken).ConfigureAwait(false) || !_buffer.AsSpan(_position + 128, 4).SequenceEqual(Magic))
        {
            throw new DicomFormatException(DicomFormatProblem.NotPart10, Math.Min(128, _offset + (_end - _position)), "not a DICOM Part 10 file: no 128-byte preamble followed by 'DICM'");
        }

        var preamble = _buffer.AsSpan(_position, 128).ToArray();
        Consume(132);

        string? transferSyntax = null, sopClass = null, sopInstance = null;
        var elements = new List<DicomElement>();
        long metaEnd = -1;
        while (true)
        {
            if (metaEnd >= 0 ? _offset >= metaEnd : !await IsNextInGroup2Async(cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            if (_offset - 132 > _limits.MaxFileMetaLength)
            {
                throw new DicomFormatException(DicomFormatProblem.LimitExceeded, _offset, $"file meta information exceeds the limit of {_limits.MaxFileMetaLength} bytes");
            }

            var start = _offset;
            await FillOrThrowAsync(8, cancellationToken).ConfigureAwait(false);
            var tag = new DicomTag(BinaryPrimitives.ReadUInt16LittleEndian(Peek(0)), BinaryPrimitives.ReadUInt16LittleEndian(Peek(2)));
            if (tag.Group != 0x0002)
            {
                throw new DicomFormatException(DicomFormatProblem.InvalidFileMeta, start, $"element {tag} inside the file meta information group");
            }

            var vr = DicomVR.From(_buffer[_position + 4], _buffer[_position + 5]);
            if (!vr.IsKnown)
            {
                throw new DicomFormatException(DicomFormatProblem.InvalidFileMeta, start, $"file meta element {tag} has an invalid VR; group 0002 is always explicit VR little endian");
            }

            uint length;
            if (vr.HasLongExplicitLength)
            {
                await FillOrThrowAsync(12, cancellationToken).ConfigureAwait(false);
                length = BinaryPrimitives.ReadUInt32LittleEndian(Peek(8));
                Consume(12);
            }
            else
            {
                length = BinaryPrimitives.ReadUInt16LittleEndian(Peek(6));
                Consume(8);
            }

            if (length > _limits.MaxFileMetaLength)
            {
                throw new DicomFormatException(DicomFormatProblem.InvalidFileMeta, start, $"file meta element {tag} declares {length} bytes");
            }

            await FillOrThrowAsync((int)length, cancellationToken).ConfigureAwait(false);
            var value = Peek(0, (int)length);
            elements.Add(DicomElement.Create(tag, vr, value.ToArray()));
            if (tag == DicomTag.FileMetaInformationGroupLength && length == 4)
            {
                metaEnd = _offset + 4 + BinaryPrimitives.ReadUInt32LittleEndian(value);
            }
            else if (tag == DicomTag.TransferSyntaxUid)
            {
                transferSyntax = TrimText(value);
            }
            else if (tag == DicomTag.MediaStorageSopClassUid)
            {
                sopClass = TrimText(value);
            }
            else if (tag == DicomTag.MediaStorageSopInstanceUid)
            {
                sopInstance = TrimText(value);
            }

            Consume((int)length);
        }

        if (string.IsNullOrEmpty(transferSyntax))
        {
            throw new DicomFormatException(DicomFormatProblem.InvalidFileMeta, _offset, "the file meta information has no Transfer Syntax UID (0002,0010)");
        }

        var syntax = TransferSyntax.FromUid(transferSyntax);
        _implicitVR = syntax.ImplicitVR;
        _bigEndian = syntax.BigEndian;
        if (syntax.Deflated)
        {
            SwitchToInflatedSource();
        }

        Meta = new FileMetaInformation(syntax, sopClass, sopInstance, preamble, _offset, elements);
        return Meta;
    }

    /// <summary>Returns the next token of the data set, or null at its end.</summary>
    public async ValueTask<DicomToken?> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (Meta is null)
        {
            throw new InvalidOperationException("read the file meta information first");
        }

        if (_pendingValue > 0)
        {
            await SkipValueAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_frames.Count > 0)
        {
            var top = _frames[^1];
            if (top.End >= 0 && _offset >= top.End)
            {
                // The well-known toolkits read an item that runs past the end of its sequence and
                // end the sequence after it (files edited without fixing the sequence length do
                // exist); so does this reader, and the end token says so. Items must be exact.
                if (_offset > top.End && top.Kind != FrameKind.Sequence)
                {
                    throw new DicomFormatException(DicomFormatProblem.Malformed, _offset, $"contents of {top.Tag} run {_offset - top.End} bytes past its declared length");
                }

                return Pop(byDelimiter: false, lengthMismatch: _offset > top.End);
            }
        }

        if (!await TryFillAsync(1, cancellationToken).ConfigureAwait(false))
        {
            if (_frames.Count == 0)
            {
                return null;
            }

            // A file that ends cleanly between elements inside items and sequences of defined length
            // (their lengths left stale by an editor) is read to its end by the well-known toolkits;
            // so it is here, and the end tokens carry the declared lengths. Anything else is truncated.
            if (_frames.All(f => f.End >= 0))
            {
                return Pop(byDelimiter: false, lengthMismatch: true);
            }

            throw new DicomFormatException(DicomFormatProblem.Truncated, _offset, $"the file ends inside {_frames[^1].Tag}, {_frames.Count} level(s) deep");
        }

        var start = _offset;
        await FillOrThrowAsync(8, cancellationToken).ConfigureAwait(false);
        var tag = new DicomTag(ReadUInt16(Peek(0)), ReadUInt16(Peek(2)));
        CountElement(start);

        if (tag.Group == 0xFFFE)
        {
            return ReadItemOrDelimiter(tag, start);
        }

        var parent = _frames.Count > 0 ? _frames[^1].Kind : FrameKind.Item;
        if (parent is FrameKind.Sequence or FrameKind.Encapsulated)
        {
            throw new DicomFormatException(DicomFormatProblem.Malformed, start, $"expected an item inside {_frames[^1].Tag}, found {tag}");
        }

        if (_firstDataSetElement && _frames.Count == 0)
        {
            DetectActualVREncoding();
        }

        DicomVR vr;
        uint length;
        if (_implicitVR)
        {
            vr = DicomDictionary.ImplicitVR(tag);
            length = ReadUInt32(Peek(4));
            Consume(8);
        }
        else
        {
            vr = DicomVR.From(_buffer[_position + 4], _buffer[_position + 5]);
            if (!vr.IsKnown)
            {
                throw new DicomFormatException(DicomFormatProblem.Malformed, start, $"element {tag} has an invalid VR '{Printable(_buffer[_position + 4])}{Printable(_buffer[_position + 5])}'");
            }

            if (vr.HasLongExplicitLength)
            {
                await FillOrThrowAsync(12, cancellationToken).ConfigureAwait(false);
                length = ReadUInt32(Peek(8));
                Consume(12);
            }
            else
            {
                length = ReadUInt16(Peek(6));
                Consume(8);
            }
        }

        var depth = _frames.Count;
        if (length == DicomToken.UndefinedLength)
        {
            if (tag == DicomTag.PixelData || (!_implicitVR && (vr == DicomVR.OB || vr == DicomVR.OW)))
            {
                Push(new Frame(FrameKind.Encapsulated, tag, -1, _implicitVR, _bigEndian), start);
                return new DicomToken(DicomTokenKind.EncapsulatedStart, tag, vr, length, start, depth);
            }

            if (vr == DicomVR.SQ || vr == DicomVR.UN || _implicitVR)
            {
                var frame = new Frame(FrameKind.Sequence, tag, -1, _implicitVR, _bigEndian);
                Push(frame, start);

                // PS3.5 6.2.2: a UN of undefined length is a sequence encoded in implicit VR little endian.
                if (vr == DicomVR.UN)
                {
                    _implicitVR = true;
                    _bigEndian = false;
                }

                // In implicit VR an undefined length makes it a sequence whatever the dictionary says
                // of the tag; its VR is SQ from here on (or UN, which keeps its own meaning).
                return new DicomToken(DicomTokenKind.SequenceStart, tag, vr == DicomVR.UN ? DicomVR.UN : DicomVR.SQ, length, start, depth);
            }

            throw new DicomFormatException(DicomFormatProblem.Malformed, start, $"element {tag} with VR {vr} has an undefined length");
        }

        if (vr == DicomVR.SQ)
        {
            CheckFitsInParent(start, length, tag);
            Push(new Frame(FrameKind.Sequence, tag, _offset + length, _implicitVR, _bigEndian, length), start);
            return new DicomToken(DicomTokenKind.SequenceStart, tag, vr, length, start, depth);
        }

        CheckValueLength(start, length, tag);
        _pendingValue = length;
        return new DicomToken(DicomTokenKind.Element, tag, vr, length, start, depth);
    }

    /// <summary>
    /// Reads the pending value into memory; refuses values longer than <paramref name="maxLength"/>.
    /// Memory grows with the bytes actually read, never ahead of them, so a small file that
    /// declares a huge value costs only what it holds before it is found truncated.
    /// </summary>
    public async ValueTask<byte[]> ReadValueAsync(int maxLength, CancellationToken cancellationToken = default)
    {
        if (_pendingValue > maxLength)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, _offset, $"a value of {_pendingValue} bytes is larger than the {maxLength} bytes this operation reads into memory");
        }

        var length = (int)_pendingValue;
        var value = new byte[Math.Min(length, Math.Max(BufferSize, _end - _position))];
        var copied = 0;
        while (copied < length)
        {
            if (!await TryFillAsync(1, cancellationToken).ConfigureAwait(false))
            {
                throw Truncated(length - copied);
            }

            var take = Math.Min(length - copied, _end - _position);
            if (copied + take > value.Length)
            {
                Array.Resize(ref value, (int)Math.Min(length, Math.Max((long)value.Length * 2, copied + take)));
            }

            _buffer.AsSpan(_position, take).CopyTo(value.AsSpan(copied));
            Consume(take);
            copied += take;
        }

        _pendingValue = 0;
        return value;
    }

    /// <summary>Streams the pending value to <paramref name="destination"/> in bounded chunks.</summary>
    public async ValueTask CopyValueToAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        while (_pendingValue > 0)
        {
            if (!await TryFillAsync(1, cancellationToken).ConfigureAwait(false))
            {
                throw Truncated(_pendingValue);
            }

            var take = (int)Math.Min(_pendingValue, _end - _position);
            await destination.WriteAsync(_buffer.AsMemory(_position, take), cancellationToken).ConfigureAwait(false);
            Consume(take);
            _pendingValue -= take;
        }
    }

    public ValueTask SkipValueAsync(CancellationToken cancellationToken = default) => CopyValueToAsync(Stream.Null, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }

        if (Meta?.TransferSyntax.Deflated == true)
        {
            await _source.DisposeAsync().ConfigureAwait(false);
        }
    }

    private DicomToken ReadItemOrDelimiter(DicomTag tag, long start)
    {
        var length = ReadUInt32(Peek(4));
        Consume(8);
        var depth = _frames.Count;
        var parent = depth > 0 ? _frames[^1] : default;

        if (tag == DicomTag.Item && depth > 0 && parent.Kind == FrameKind.Sequence)
        {
            if (length != DicomToken.UndefinedLength && parent.End < 0)
            {
                CheckFitsInParent(start, length, tag);
            }

            Push(new Frame(FrameKind.Item, tag, length == DicomToken.UndefinedLength ? -1 : _offset + length, _implicitVR, _bigEndian, length), start);
            return new DicomToken(DicomTokenKind.ItemStart, tag, DicomVR.None, length, start, depth);
        }

        if (tag == DicomTag.Item && depth > 0 && parent.Kind == FrameKind.Encapsulated)
        {
            if (length == DicomToken.UndefinedLength)
            {
                throw new DicomFormatException(DicomFormatProblem.Malformed, start, "a pixel data fragment has an undefined length");
            }

            CheckValueLength(start, length, tag);
            _pendingValue = length;
            return new DicomToken(DicomTokenKind.Fragment, tag, DicomVR.None, length, start, depth);
        }

        if (tag == DicomTag.ItemDelimitation && depth > 0 && parent.Kind == FrameKind.Item && parent.End < 0)
        {
            return Pop(byDelimiter: true, length, start);
        }

        if (tag == DicomTag.SequenceDelimitation && depth > 0 && parent.Kind is FrameKind.Sequence or FrameKind.Encapsulated && parent.End < 0)
        {
            return Pop(byDelimiter: true, length, start);
        }

        throw new DicomFormatException(DicomFormatProblem.Malformed, start, $"unexpected {tag} {(depth == 0 ? "at the top level" : $"inside {parent.Tag}")}");
    }

    private DicomToken Pop(bool byDelimiter, uint length = 0, long? at = null, bool lengthMismatch = false)
    {
        var frame = _frames[^1];
        _frames.RemoveAt(_frames.Count - 1);
        _implicitVR = frame.ImplicitVR;
        _bigEndian = frame.BigEndian;
        var kind = frame.Kind switch
        {
            FrameKind.Item => DicomTokenKind.ItemEnd,
            FrameKind.Sequence => DicomTokenKind.SequenceEnd,
            _ => DicomTokenKind.EncapsulatedEnd,
        };
        if (byDelimiter && length != 0)
        {
            throw new DicomFormatException(DicomFormatProblem.Malformed, at ?? _offset, $"a delimiter closing {frame.Tag} has length {length}, not 0");
        }

        // An end token of a defined-length container carries the length that was declared.
        var declared = frame.End >= 0 ? frame.DeclaredLength : length;
        return new DicomToken(kind, frame.Tag, DicomVR.None, declared, at ?? _offset, _frames.Count, byDelimiter, lengthMismatch);
    }

    private void Push(Frame frame, long start)
    {
        if (_frames.Count(f => f.Kind != FrameKind.Item) >= _limits.MaxSequenceDepth && frame.Kind != FrameKind.Item)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, start, $"sequences nest deeper than the limit of {_limits.MaxSequenceDepth}");
        }

        _frames.Add(frame);
    }

    private void CountElement(long start)
    {
        if (++_elements > _limits.MaxElements)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, start, $"more than {_limits.MaxElements} elements");
        }
    }

    private void CheckValueLength(long start, uint length, DicomTag tag)
    {
        if (length > _limits.MaxValueLength)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, start, $"{tag} declares {length} bytes, above the limit of {_limits.MaxValueLength}");
        }

        CheckFitsInParent(start, length, tag);
    }

    private void CheckFitsInParent(long start, uint length, DicomTag tag)
    {
        for (var i = _frames.Count - 1; i >= 0; i--)
        {
            if (_frames[i].End >= 0)
            {
                if (_offset + length > _frames[i].End)
                {
                    throw new DicomFormatException(DicomFormatProblem.Malformed, start, $"{tag} declares {length} bytes, more than is left of {_frames[i].Tag}");
                }

                return;
            }
        }
    }

    // Some files say explicit VR in their meta information and are implicit, or the reverse;
    // the well-known toolkits look at the first element and believe it, and so does this reader.
    private void DetectActualVREncoding()
    {
        _firstDataSetElement = false;
        var looksExplicit = IsUpperLetter(_buffer[_position + 4]) && IsUpperLetter(_buffer[_position + 5])
            && DicomVR.From(_buffer[_position + 4], _buffer[_position + 5]).IsKnown;
        if (_implicitVR && looksExplicit)
        {
            _implicitVR = false;
        }
        else if (!_implicitVR && !looksExplicit)
        {
            _implicitVR = true;
        }
    }

    private async ValueTask<bool> IsNextInGroup2Async(CancellationToken cancellationToken)
    {
        if (!await TryFillAsync(2, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        return BinaryPrimitives.ReadUInt16LittleEndian(Peek(0)) == 0x0002;
    }

    private void SwitchToInflatedSource()
    {
        var leftover = _buffer.AsSpan(_position, _end - _position).ToArray();
        Stream compressed = new PrefixedStream(leftover, _source);
        if (_keepDeflatedPayload)
        {
            _deflatedPayload = new MemoryStream();
            compressed = new CopyingStream(compressed, _deflatedPayload);
        }

        _source = new DeflateStream(compressed, CompressionMode.Decompress);
        _inflating = true;
        _position = 0;
        _end = 0;
        _sourceEnded = false;
    }

    private ReadOnlySpan<byte> Peek(int at, int length = 4) => _buffer.AsSpan(_position + at, length);

    private ushort ReadUInt16(ReadOnlySpan<byte> span) => _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span);

    private uint ReadUInt32(ReadOnlySpan<byte> span) => _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);

    private void Consume(int count)
    {
        _position += count;
        _offset += count;
    }

    private async ValueTask FillOrThrowAsync(int count, CancellationToken cancellationToken)
    {
        if (!await TryFillAsync(count, cancellationToken).ConfigureAwait(false))
        {
            throw Truncated(count);
        }
    }

    private async ValueTask<bool> TryFillAsync(int count, CancellationToken cancellationToken)
    {
        if (_end - _position >= count)
        {
            return true;
        }

        if (count > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(count);
            _buffer.AsSpan(_position, _end - _position).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
            _end -= _position;
            _position = 0;
        }
        else if (_position > 0)
        {
            _buffer.AsSpan(_position, _end - _position).CopyTo(_buffer);
            _end -= _position;
            _position = 0;
        }

        while (_end - _position < count && !_sourceEnded)
        {
            int read;
            try
            {
                read = await _source.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException ex) when (_inflating)
            {
                throw new DicomFormatException(DicomFormatProblem.Malformed, _offset + (_end - _position), $"the deflated data set is corrupt: {ex.Message}");
            }

            if (read == 0)
            {
                _sourceEnded = true;
                break;
            }

            _end += read;
            if (_offset + (_end - _position) > _limits.MaxDecodedBytes)
            {
                throw new DicomFormatException(DicomFormatProblem.LimitExceeded, _offset, $"the data set exceeds the limit of {_limits.MaxDecodedBytes} bytes");
            }
        }

        return _end - _position >= count;
    }

    private DicomFormatException Truncated(long needed) =>
        new(DicomFormatProblem.Truncated, _offset + (_end - _position), $"the file ends {needed - (_end - _position)} byte(s) early");

    private static bool IsUpperLetter(byte b) => b is >= (byte)'A' and <= (byte)'Z';

    private static char Printable(byte b) => b is >= 0x20 and < 0x7F ? (char)b : '?';

    private static string TrimText(ReadOnlySpan<byte> value) => Encoding.ASCII.GetString(value).TrimEnd('\0', ' ');

    private enum FrameKind
    {
        Item,
        Sequence,
        Encapsulated,
    }

    private readonly record struct Frame(FrameKind Kind, DicomTag Tag, long End, bool ImplicitVR, bool BigEndian, uint DeclaredLength = 0);
}
