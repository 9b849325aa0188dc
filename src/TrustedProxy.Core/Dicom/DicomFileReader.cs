namespace TrustedProxy.Dicom;

/// <summary>
/// Reads a Part 10 file element by element into <see cref="DicomElement"/>s: sequences are built
/// whole (nesting tracked on an explicit stack), values are held in memory, except top-level values
/// larger than <c>deferAbove</c>, which stay in the stream and are handed over with
/// <see cref="CopyDeferredAsync"/> so that a multi-gigabyte pixel data element never has to fit in memory.
/// </summary>
internal sealed class DicomFileReader : IAsyncDisposable
{
    private readonly DicomStreamReader _reader;
    private readonly DicomReaderLimits _limits;
    private readonly long _deferAbove;
    private DicomElement? _deferred;

    public DicomFileReader(Stream source, DicomReaderLimits? limits = null, long deferAbove = long.MaxValue, bool keepDeflatedPayload = false)
    {
        _limits = limits ?? DicomReaderLimits.Default;
        _reader = new DicomStreamReader(source, _limits, keepDeflatedPayload);
        _deferAbove = deferAbove;
    }

    public FileMetaInformation? Meta => _reader.Meta;

    /// <summary>The encoding the data set really uses (known once the first element is read).</summary>
    public DicomEncoding DataSetEncoding { get; private set; }

    public byte[]? DeflatedPayload => _reader.DeflatedPayload;

    public long Offset => _reader.Offset;

    public async ValueTask<FileMetaInformation> ReadFileMetaAsync(CancellationToken cancellationToken = default)
    {
        var meta = await _reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        DataSetEncoding = DicomEncoding.Of(meta.TransferSyntax);
        return meta;
    }

    /// <summary>The next top-level element, or null at the end. A deferred value not copied by then is skipped.</summary>
    public async ValueTask<DicomElement?> ReadElementAsync(DicomDataset? topLevel = null, CancellationToken cancellationToken = default)
    {
        if (_deferred is not null)
        {
            await SkipDeferredAsync(cancellationToken).ConfigureAwait(false);
        }

        var token = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (token is null)
        {
            return null;
        }

        var first = token.Value;
        if (first.Depth == 0 && first.Kind == DicomTokenKind.Element)
        {
            DataSetEncoding = _reader.CurrentEncoding;
            if (topLevel is not null)
            {
                topLevel.Encoding = DataSetEncoding;
            }
        }

        switch (first.Kind)
        {
            case DicomTokenKind.Element when first.Length > _deferAbove:
                return _deferred = DicomElement.Deferred(first.Tag, first.VR, first.Length, encapsulated: false);
            case DicomTokenKind.Element:
                return DicomElement.Create(first.Tag, first.VR, await ReadValueAsync(cancellationToken).ConfigureAwait(false));
            case DicomTokenKind.EncapsulatedStart when _deferAbove < long.MaxValue:
                return _deferred = DicomElement.Deferred(first.Tag, first.VR, 0, encapsulated: true);
            case DicomTokenKind.EncapsulatedStart:
            case DicomTokenKind.SequenceStart:
                return await ReadNestedAsync(first, topLevel, cancellationToken).ConfigureAwait(false);
            default:
                throw new DicomFormatException(DicomFormatProblem.Malformed, first.Offset, $"unexpected {first.Kind} at the top level");
        }
    }

    /// <summary>Streams the value of the deferred element just returned: raw bytes for a plain value.</summary>
    public async ValueTask CopyDeferredAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        var deferred = _deferred ?? throw new InvalidOperationException("no deferred value to copy");
        if (deferred.Fragments is not null)
        {
            throw new InvalidOperationException("use ReadDeferredFragmentAsync for encapsulated pixel data");
        }

        await _reader.CopyValueToAsync(destination, cancellationToken).ConfigureAwait(false);
        _deferred = null;
    }

    /// <summary>For deferred encapsulated pixel data: the next fragment's length (its value to be copied next), or null after the last.</summary>
    public async ValueTask<long?> ReadDeferredFragmentAsync(CancellationToken cancellationToken = default)
    {
        var token = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new DicomFormatException(DicomFormatProblem.Truncated, _reader.Offset, "the file ends inside encapsulated pixel data");
        if (token.Kind == DicomTokenKind.EncapsulatedEnd)
        {
            _deferred = null;
            return null;
        }

        return token.Length;
    }

    public ValueTask CopyFragmentAsync(Stream destination, CancellationToken cancellationToken = default) =>
        _reader.CopyValueToAsync(destination, cancellationToken);

    public async ValueTask DisposeAsync() => await _reader.DisposeAsync().ConfigureAwait(false);

    /// <summary>
    /// Reads the value of a standard sequence that was encoded as UN with a defined length: per
    /// PS3.5 6.2.2 its items are in implicit VR little endian.
    /// </summary>
    public static DicomSequence? ParseImplicitSequence(DicomTag tag, ReadOnlyMemory<byte> value, DicomDataset? parent)
    {
        // A minimal Part 10 wrapper (implicit VR little endian) around the one element, so the same
        // reader, with the same limits, reads it.
        using var wrapper = new MemoryStream();
        var meta = new DicomDataset(DicomEncoding.ExplicitLittle);
        meta.Set(DicomElement.Create(DicomTag.FileMetaInformationGroupLength, DicomVR.UL, new byte[4]));
        meta.Set(DicomElement.Text(DicomTag.TransferSyntaxUid, DicomVR.UI, TransferSyntax.ImplicitVRLittleEndianUid));
        var writer = new DicomStreamWriter(wrapper);
        writer.WritePreambleAndMetaAsync(new byte[128], meta).GetAwaiter().GetResult();
        writer.WriteHeaderAsync(tag, DicomVR.SQ, (uint)value.Length, DicomEncoding.ImplicitLittle).GetAwaiter().GetResult();
        wrapper.Write(value.Span);
        wrapper.Position = 0;

        var reader = new DicomFileReader(wrapper);
        reader.ReadFileMetaAsync().AsTask().GetAwaiter().GetResult();
        var holder = new DicomDataset(DicomEncoding.ImplicitLittle, parent: parent);
        var element = reader.ReadElementAsync(holder).AsTask().GetAwaiter().GetResult();
        return element?.Sequence;
    }

    private async ValueTask SkipDeferredAsync(CancellationToken cancellationToken)
    {
        if (_deferred!.Fragments is null)
        {
            await _reader.SkipValueAsync(cancellationToken).ConfigureAwait(false);
            _deferred = null;
            return;
        }

        while (await ReadDeferredFragmentAsync(cancellationToken).ConfigureAwait(false) is not null)
        {
            await _reader.SkipValueAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<byte[]> ReadValueAsync(CancellationToken cancellationToken)
    {
        var length = _reader.PendingValueLength;
        if (length > int.MaxValue - 64)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, _reader.Offset, $"a value of {length} bytes cannot be held in memory; read the file as a stream");
        }

        return await _reader.ReadValueAsync((int)length, cancellationToken).ConfigureAwait(false);
    }

    // Builds a sequence (or encapsulated pixel data) and everything nested in it, without recursion.
    private async ValueTask<DicomElement> ReadNestedAsync(DicomToken start, DicomDataset? topLevel, CancellationToken cancellationToken)
    {
        var stack = new Stack<Builder>();
        stack.Push(new Builder(start, parentDataset: topLevel));
        while (true)
        {
            var token = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new DicomFormatException(DicomFormatProblem.Truncated, _reader.Offset, $"the file ends inside {start.Tag}");
            var current = stack.Peek();
            switch (token.Kind)
            {
                case DicomTokenKind.ItemStart:
                    current.BeginItem(new DicomDataset(_reader.CurrentEncoding, parent: current.ParentDataset), token.IsUndefinedLength);
                    break;
                case DicomTokenKind.ItemEnd:
                    current.EndItem(token.LengthMismatch ? token.Length : null);
                    break;
                case DicomTokenKind.Element:
                    CheckNested(token);
                    current.Item!.Append(DicomElement.Create(token.Tag, token.VR, await ReadValueAsync(cancellationToken).ConfigureAwait(false)));
                    break;
                case DicomTokenKind.Fragment:
                    CheckNested(token);
                    current.Fragments!.Add(await ReadValueAsync(cancellationToken).ConfigureAwait(false));
                    break;
                case DicomTokenKind.SequenceStart:
                case DicomTokenKind.EncapsulatedStart:
                    stack.Push(new Builder(token, current.Item));
                    break;
                case DicomTokenKind.SequenceEnd:
                case DicomTokenKind.EncapsulatedEnd:
                    var finished = stack.Pop().Build(token.LengthMismatch ? token.Length : null);
                    if (stack.Count == 0)
                    {
                        return finished;
                    }

                    stack.Peek().Item!.Append(finished);
                    break;
            }
        }
    }

    private void CheckNested(DicomToken token)
    {
        if (token.Length > _limits.MaxNestedValueLength)
        {
            throw new DicomFormatException(DicomFormatProblem.LimitExceeded, token.Offset, $"{token.Tag} inside a sequence declares {token.Length} bytes, above the limit of {_limits.MaxNestedValueLength}");
        }
    }

    private sealed class Builder(DicomToken start, DicomDataset? parentDataset)
    {
        private readonly List<DicomItem> _items = [];
        private bool _itemUndefined;

        public DicomDataset? ParentDataset { get; } = parentDataset;

        public DicomDataset? Item { get; private set; }

        public List<ReadOnlyMemory<byte>>? Fragments { get; } = start.Kind == DicomTokenKind.EncapsulatedStart ? [] : null;

        public void BeginItem(DicomDataset dataset, bool undefinedLength)
        {
            Item = dataset;
            _itemUndefined = undefinedLength;
        }

        public void EndItem(uint? inconsistentLength)
        {
            _items.Add(new DicomItem(Item!, _itemUndefined, inconsistentLength));
            Item = null;
        }

        public DicomElement Build(uint? inconsistentLength) => Fragments is not null
            ? DicomElement.Create(start.Tag, start.VR, new DicomFragments(Fragments))
            : DicomElement.Create(start.Tag, new DicomSequence(_items, start.IsUndefinedLength, inconsistentLength), start.VR);
    }
}
