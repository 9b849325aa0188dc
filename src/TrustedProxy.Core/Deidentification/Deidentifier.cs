using System.Globalization;
using System.IO.Compression;
using TrustedProxy.Dicom;

namespace TrustedProxy.Deidentification;

/// <summary>What a de-identification did, for the response and the audit trail.</summary>
public sealed record DeidentificationReport(string Profile, int? DateShiftDays, int RemovedElements, int ReplacedElements);

/// <summary>
/// The de-identified view (PS3.15 Annex E): the Basic Application Level Confidentiality Profile
/// plus the options of a named profile, applied to every attribute, recursing into sequences.
/// The file streams through: its header (everything before the first large value) is held and
/// de-identified as a whole, so that free text can be cleaned of identifiers found anywhere in it;
/// large values (pixel data) are copied or dropped without being held.
/// See docs/deidentification.md for the construction and what it does not protect.
/// </summary>
internal sealed class Deidentifier(DeidentificationKeys keys)
{
    /// <summary>Values above this size are streamed, not held.</summary>
    public const int InlineLimit = 256 * 1024;

    /// <summary>The proxy's implementation class UID, under its UUID-derived arc.</summary>
    public const string ImplementationClassUid = "2.25.15857946981456065000750495807402303225.2";

    public const string ImplementationVersionName = "TPROXY_1";

    /// <summary>
    /// De-identifies one file from <paramref name="input"/> to <paramref name="output"/>. The
    /// research pseudonym and date shift are those of the patient in the scope of the header's Issuer
    /// of Patient ID, else of <paramref name="originOrganisation"/>, the organisation that uploaded it;
    /// <paramref name="researchPseudonym"/>, when given, is the one the index holds for the record, so
    /// that the view always shows what a de-identified search matches.
    /// </summary>
    public async Task<DeidentificationReport> DeidentifyAsync(Stream input, Stream output, DeidentificationProfile profile, string originOrganisation, DicomReaderLimits limits, CancellationToken cancellationToken, string? researchPseudonym = null)
    {
        await using var reader = new DicomFileReader(input, limits, deferAbove: InlineLimit);
        var meta = await reader.ReadFileMetaAsync(cancellationToken).ConfigureAwait(false);
        var header = new DicomDataset(reader.DataSetEncoding);
        DicomElement? next;
        while ((next = await reader.ReadElementAsync(header, cancellationToken).ConfigureAwait(false)) is { IsDeferred: false })
        {
            header.Append(next);
        }

        var session = new Session(keys, profile, header, originOrganisation, researchPseudonym: researchPseudonym);
        session.DeidentifyTopLevel(header);
        var newMeta = BuildMeta(meta, header);

        var writer = new DicomStreamWriter(output);
        await writer.WritePreambleAndMetaAsync(new byte[128], newMeta, cancellationToken).ConfigureAwait(false);
        var datasetStream = meta.TransferSyntax.Deflated ? new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true) : output;
        var datasetWriter = meta.TransferSyntax.Deflated ? new DicomStreamWriter(datasetStream) : writer;
        var encoding = header.Encoding;

        // Elements the session added with tags above the first streamed element wait for their place.
        var pending = new Queue<DicomElement>(header.Where(e => next is not null && e.Tag.CompareTo(next.Tag) > 0));
        foreach (var element in header.Where(e => next is null || e.Tag.CompareTo(next.Tag) < 0))
        {
            await datasetWriter.WriteElementAsync(element, encoding, cancellationToken).ConfigureAwait(false);
        }

        while (next is not null)
        {
            while (pending.Count > 0 && pending.Peek().Tag.CompareTo(next.Tag) < 0)
            {
                await datasetWriter.WriteElementAsync(pending.Dequeue(), encoding, cancellationToken).ConfigureAwait(false);
            }

            if (next.IsDeferred)
            {
                await session.StreamDeferredAsync(next, reader, datasetWriter, encoding, cancellationToken).ConfigureAwait(false);
            }
            else if (session.DeidentifyElement(next, header) is { } kept)
            {
                await datasetWriter.WriteElementAsync(kept, encoding, cancellationToken).ConfigureAwait(false);
            }

            next = await reader.ReadElementAsync(header, cancellationToken).ConfigureAwait(false);
        }

        foreach (var element in pending)
        {
            await datasetWriter.WriteElementAsync(element, encoding, cancellationToken).ConfigureAwait(false);
        }

        await datasetWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (datasetStream != output)
        {
            await datasetStream.DisposeAsync().ConfigureAwait(false);
        }

        return session.Report;
    }

    /// <summary>
    /// De-identifies a data set held in memory (stored metadata for QIDO and /metadata), in place.
    /// Metadata carries no pixels, so the burned-in annotation check applies only when asked.
    /// </summary>
    public DeidentificationReport DeidentifyDataset(DicomDataset dataset, DeidentificationProfile profile, string originOrganisation, string? researchPseudonym = null, bool refuseBurnedIn = false)
    {
        var session = new Session(keys, profile, dataset, originOrganisation, refuseBurnedIn, researchPseudonym);
        session.DeidentifyTopLevel(dataset);
        return session.Report;
    }

    /// <summary>Throws <see cref="DeidentificationRefusedException"/> if the object's de-identified view would be refused.</summary>
    public void CheckEligible(DicomDataset header, DeidentificationProfile profile) => _ = new Session(keys, profile, header, originOrganisation: string.Empty, refuseBurnedIn: true);

    private static DicomDataset BuildMeta(FileMetaInformation original, DicomDataset dataset)
    {
        var meta = new DicomDataset(DicomEncoding.ExplicitLittle);
        meta.Set(DicomElement.Create(DicomTag.FileMetaInformationGroupLength, DicomVR.UL, new byte[4]));
        meta.Set(DicomElement.Create(new DicomTag(0x0002, 0x0001), DicomVR.OB, new byte[] { 0, 1 }));
        meta.Set(DicomElement.Text(DicomTag.MediaStorageSopClassUid, DicomVR.UI, dataset.GetString(DicomTag.SopClassUid) ?? original.MediaStorageSopClassUid ?? string.Empty));
        meta.Set(DicomElement.Text(DicomTag.MediaStorageSopInstanceUid, DicomVR.UI, dataset.GetString(DicomTag.SopInstanceUid) ?? string.Empty));
        meta.Set(DicomElement.Text(DicomTag.TransferSyntaxUid, DicomVR.UI, original.TransferSyntax.Uid));
        meta.Set(DicomElement.Text(new DicomTag(0x0002, 0x0012), DicomVR.UI, ImplementationClassUid));
        meta.Set(DicomElement.Text(new DicomTag(0x0002, 0x0013), DicomVR.SH, ImplementationVersionName));
        return meta;
    }

    /// <summary>The de-identification of one object: its identifiers, its date shift, its pseudonym.</summary>
    private sealed class Session
    {
        private static readonly DicomTag PatientIdentityRemoved = new(0x0012, 0x0062);
        private static readonly DicomTag DeidentificationMethod = new(0x0012, 0x0063);
        private static readonly DicomTag DeidentificationMethodCodeSequence = new(0x0012, 0x0064);
        private static readonly DicomTag LongitudinalTemporalInformationModified = new(0x0028, 0x0303);
        private static readonly DicomTag CodeValue = new(0x0008, 0x0100);
        private static readonly DicomTag CodingSchemeDesignator = new(0x0008, 0x0102);
        private static readonly DicomTag CodeMeaning = new(0x0008, 0x0104);
        private static readonly DicomTag ContentSequence = new(0x0040, 0xA730);
        private static readonly DicomTag RelationshipType = new(0x0040, 0xA010);
        private static readonly DicomTag ValueType = new(0x0040, 0xA040);
        private static readonly DicomTag ContinuityOfContent = new(0x0040, 0xA050);

        private readonly DeidentificationKeys _keys;
        private readonly DeidentificationProfile _profile;
        private readonly HashSet<DeidentificationOption> _options;
        private readonly List<SafePrivateAttribute> _safePrivate;
        private readonly List<string> _identifiers;
        private readonly int? _dateShift;
        private readonly string _pseudonym;
        private int _removed;
        private int _replaced;

        // How many enclosing sequences the profile replaces (D) or cleans (C): inside them, values the
        // table does not list are not kept as they are, since the action on the sequence covers its content.
        private int _insideDummy;
        private int _insideClean;

        public Session(DeidentificationKeys keys, DeidentificationProfile profile, DicomDataset header, string originOrganisation, bool refuseBurnedIn = true, string? researchPseudonym = null)
        {
            _keys = keys;
            _profile = profile;
            _options = [.. profile.Options];
            _safePrivate = profile.SafePrivateAttributes.Select(s => SafePrivateAttribute.TryParse(s, out var a) ? a! : throw new InvalidOperationException(s)).ToList();
            if (refuseBurnedIn)
            {
                RefuseBurnedInAnnotation(header);
            }

            var patientKey = keys.PatientKey(header, originOrganisation);
            _pseudonym = researchPseudonym ?? keys.ResearchPseudonym(patientKey);
            _dateShift = _options.Contains(DeidentificationOption.RetainLongitudinalModifiedDates) ? keys.DateShiftDays(patientKey, profile.MaxDateShiftDays) : null;
            _identifiers = CollectIdentifiers(header);
        }

        public DeidentificationReport Report => new(_profile.Name, _dateShift, _removed, _replaced);

        public void DeidentifyTopLevel(DicomDataset dataset)
        {
            DeidentifyDataset(dataset);
            dataset.Set(DicomElement.Text(DicomTag.SpecificCharacterSet, DicomVR.CS, "ISO_IR 192"));
            dataset.Set(DicomElement.Text(DicomTag.PatientId, DicomVR.LO, _pseudonym));
            dataset.Set(DicomElement.Text(DicomTag.PatientName, DicomVR.PN, _pseudonym));
            dataset.Set(DicomElement.Text(PatientIdentityRemoved, DicomVR.CS, "YES"));
            var method = _options.Count == 0 ? "PS3.15 Basic Profile" : "PS3.15 Basic Profile with " + string.Join(", ", _options.Order());
            dataset.Set(DicomElement.Text(DeidentificationMethod, DicomVR.LO, Truncate($"TrustedProxy '{_profile.Name}': {method}", 64)));
            dataset.Set(DicomElement.Create(DeidentificationMethodCodeSequence, new DicomSequence(MethodCodes(dataset).ToList(), UndefinedLength: false)));
            dataset.Set(DicomElement.Text(LongitudinalTemporalInformationModified, DicomVR.CS,
                _dateShift is not null ? "MODIFIED" : _options.Contains(DeidentificationOption.RetainLongitudinalFullDates) ? "UNMODIFIED" : "REMOVED"));
        }

        /// <summary>The de-identified form of one element, or null to remove it.</summary>
        public DicomElement? DeidentifyElement(DicomElement element, DicomDataset owner)
        {
            var action = ActionFor(element, owner);
            if (action == ProfileAction.Remove)
            {
                _removed++;
                return null;
            }

            var vr = element.EffectiveVR;
            if (element.Sequence is not null || (vr == DicomVR.SQ && element.Value.Length > 0))
            {
                return DeidentifySequence(element, owner, action);
            }

            if (element.Fragments is not null)
            {
                // Encapsulated pixel data is kept as is; Zero or Dummy on it would break the object.
                return element;
            }

            if (action == ProfileAction.Keep && IsFreeText(element))
            {
                if (_insideDummy > 0)
                {
                    action = ProfileAction.Dummy;
                }
                else if (_insideClean > 0)
                {
                    action = ProfileAction.Clean;
                }
            }
            else if (action == ProfileAction.Keep && vr == DicomVR.UN && _insideDummy + _insideClean > 0)
            {
                // An unknown value inside replaced or cleaned content cannot be shown to be free of text.
                _removed++;
                return null;
            }

            var replacement = action switch
            {
                ProfileAction.Keep => Reencode(element, owner),
                ProfileAction.Zero => DicomElement.Create(element.Tag, vr, ReadOnlyMemory<byte>.Empty),
                ProfileAction.Dummy => Dummy(element, owner),
                ProfileAction.ReplaceUid => vr == DicomVR.UI ? ReplaceUids(element, owner) : Dummy(element, owner),
                ProfileAction.Clean => Clean(element, owner),
                _ => throw new InvalidOperationException(action.ToString()),
            };
            if (action != ProfileAction.Keep)
            {
                _replaced++;
            }

            return replacement;
        }

        public async Task StreamDeferredAsync(DicomElement element, DicomFileReader reader, DicomStreamWriter writer, DicomEncoding encoding, CancellationToken cancellationToken)
        {
            var action = ActionFor(element, owner: null);
            if (action == ProfileAction.Remove)
            {
                _removed++;
                return;
            }

            if (element.Fragments is not null)
            {
                await writer.WriteHeaderAsync(element.Tag, element.VR, DicomToken.UndefinedLength, encoding, cancellationToken).ConfigureAwait(false);
                while (await reader.ReadDeferredFragmentAsync(cancellationToken).ConfigureAwait(false) is { } length)
                {
                    await writer.WriteItemTagAsync(DicomTag.Item, (uint)length, encoding, cancellationToken).ConfigureAwait(false);
                    await reader.CopyFragmentAsync(writer.Output, cancellationToken).ConfigureAwait(false);
                }

                await writer.WriteItemTagAsync(DicomTag.SequenceDelimitation, 0, encoding, cancellationToken).ConfigureAwait(false);
                return;
            }

            switch (action)
            {
                case ProfileAction.Zero:
                    _replaced++;
                    await writer.WriteHeaderAsync(element.Tag, element.VR, 0, encoding, cancellationToken).ConfigureAwait(false);
                    return;
                case ProfileAction.Keep:
                    await writer.WriteHeaderAsync(element.Tag, element.VR, (uint)element.DeferredLength, encoding, cancellationToken).ConfigureAwait(false);
                    await reader.CopyDeferredAsync(writer.Output, cancellationToken).ConfigureAwait(false);
                    return;
                default:
                    // A large value to be replaced or cleaned is binary (text VRs cannot be this long): zeros of the same length.
                    _replaced++;
                    await writer.WriteHeaderAsync(element.Tag, element.VR, (uint)element.DeferredLength, encoding, cancellationToken).ConfigureAwait(false);
                    await reader.CopyDeferredAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
                    var zeros = new byte[64 * 1024];
                    for (var left = element.DeferredLength; left > 0; left -= zeros.Length)
                    {
                        await writer.Output.WriteAsync(zeros.AsMemory(0, (int)Math.Min(zeros.Length, left)), cancellationToken).ConfigureAwait(false);
                    }

                    return;
            }
        }

        private void DeidentifyDataset(DicomDataset dataset)
        {
            // Every element is decoded against the data set as it was, then all are swapped in at once.
            var kept = new List<DicomElement>(dataset.Count);
            foreach (var element in dataset.ToList())
            {
                if (DeidentifyElement(element, dataset) is { } result)
                {
                    kept.Add(result);
                }
            }

            dataset.ReplaceAll(kept);

            // Text in items was decoded with the inherited character set and is now UTF-8 like the top level.
            if (dataset.Parent is not null)
            {
                dataset.Remove(DicomTag.SpecificCharacterSet);
            }
        }

        private DicomElement? DeidentifySequence(DicomElement element, DicomDataset owner, ProfileAction action)
        {
            if (action == ProfileAction.Zero)
            {
                _replaced++;
                return DicomElement.Create(element.Tag, new DicomSequence([], UndefinedLength: false));
            }

            if (action == ProfileAction.Dummy && element.Tag == ContentSequence)
            {
                _replaced++;
                return DicomElement.Create(element.Tag, new DicomSequence([DummyContentItem(owner)], UndefinedLength: false));
            }

            var sequence = element.Sequence ?? ParseUnknownSequence(element, owner);
            if (sequence is null)
            {
                // A standard sequence hidden in an undecodable UN value: without seeing inside, it cannot be kept.
                _removed++;
                return null;
            }

            // Items are written in the encoding of the data set that holds them, except inside a UN of
            // undefined length (implicit VR little endian). Changing between implicit and explicit VR
            // keeps the bytes of values; changing byte order would not, and never happens in valid files.
            var keepAsUnknown = element.VR == DicomVR.UN && element.Sequence is { UndefinedLength: true };
            var contentEncoding = keepAsUnknown ? DicomEncoding.ImplicitLittle : owner.Encoding;
            if (sequence.Items.Any(i => i.Dataset.Encoding.BigEndian != contentEncoding.BigEndian))
            {
                _removed++;
                return null;
            }

            var items = new List<DicomItem>(sequence.Items.Count);
            _insideDummy += action == ProfileAction.Dummy ? 1 : 0;
            _insideClean += action == ProfileAction.Clean ? 1 : 0;
            try
            {
                foreach (var item in sequence.Items)
                {
                    var copy = new DicomDataset(contentEncoding, item.Dataset, parent: owner);
                    DeidentifyDataset(copy);
                    items.Add(new DicomItem(copy, item.UndefinedLength));
                }
            }
            finally
            {
                _insideDummy -= action == ProfileAction.Dummy ? 1 : 0;
                _insideClean -= action == ProfileAction.Clean ? 1 : 0;
            }

            // Rebuilt, so its length is computed from its new contents.
            return DicomElement.Create(element.Tag, new DicomSequence(items, sequence.UndefinedLength || keepAsUnknown), keepAsUnknown ? DicomVR.UN : DicomVR.SQ);
        }

        /// <summary>
        /// The dummy content tree that replaces a Content Sequence (D) when structured content is not
        /// cleaned: one empty CONTAINER, so that an SR document keeps a valid root with one child and no
        /// text, name, date, code of the original or UID from its tree.
        /// </summary>
        private static DicomItem DummyContentItem(DicomDataset owner)
        {
            var item = new DicomDataset(owner.Encoding, parent: owner);
            item.Set(DicomElement.Text(RelationshipType, DicomVR.CS, "CONTAINS"));
            item.Set(DicomElement.Text(ValueType, DicomVR.CS, "CONTAINER"));
            item.Set(DicomElement.Text(ContinuityOfContent, DicomVR.CS, "SEPARATE"));
            return new DicomItem(item, UndefinedLength: false);
        }

        // Values a person writes or that name, date or place someone; coded strings, UIDs and numbers are not.
        private static bool IsFreeText(DicomElement element)
        {
            var vr = element.EffectiveVR;
            return vr.IsText && vr != DicomVR.CS && vr != DicomVR.UI && vr != DicomVR.IS && vr != DicomVR.DS;
        }

        private ProfileAction ActionFor(DicomElement element, DicomDataset? owner)
        {
            if (element.Tag == DicomTag.SpecificCharacterSet || element.Tag.Element == 0x0000)
            {
                return element.Tag.Element == 0x0000 ? ProfileAction.Remove : ProfileAction.Keep;
            }

            if (element.Tag.IsPrivate)
            {
                return _options.Contains(DeidentificationOption.RetainSafePrivate) && IsSafePrivate(element.Tag, owner) ? ProfileAction.Keep : ProfileAction.Remove;
            }

            return ConfidentialityProfile.Resolve(ConfidentialityProfile.Find(element.Tag), _options);
        }

        private bool IsSafePrivate(DicomTag tag, DicomDataset? owner)
        {
            if (owner is null || _safePrivate.Count == 0)
            {
                return false;
            }

            if (tag.IsPrivateCreator)
            {
                var creator = owner.GetString(tag);
                return _safePrivate.Any(s => s.Group == tag.Group && s.Creator == creator);
            }

            var block = (ushort)(tag.Element >> 8);
            var owningCreator = block >= 0x10 ? owner.GetString(new DicomTag(tag.Group, block)) : null;
            return owningCreator is not null && _safePrivate.Any(s => s.Group == tag.Group && s.Element == (byte)tag.Element && s.Creator == owningCreator);
        }

        private DicomElement Reencode(DicomElement element, DicomDataset owner)
        {
            var vr = element.EffectiveVR;
            if (!DicomValues.UsesCharacterSet(vr) || element.Value.IsEmpty)
            {
                return element;
            }

            return DicomElement.Create(element.Tag, vr, DicomValues.EncodeText(DecodeRaw(element, owner), vr, Utf8));
        }

        private DicomElement Dummy(DicomElement element, DicomDataset owner)
        {
            var vr = element.EffectiveVR;
            if (element.Tag == DicomTag.PatientId || element.Tag == DicomTag.PatientName)
            {
                return DicomElement.Text(element.Tag, vr, _pseudonym);
            }

            if (vr == DicomVR.UI)
            {
                return ReplaceUids(element, owner);
            }

            if (vr.IsText)
            {
                var value = vr == DicomVR.DA ? "19000101"
                    : vr == DicomVR.TM ? "000000"
                    : vr == DicomVR.DT ? "19000101000000"
                    : vr == DicomVR.AS ? "000Y"
                    : vr == DicomVR.IS || vr == DicomVR.DS ? "0"
                    : vr == DicomVR.UR ? "urn:trustedproxy:removed"
                    : "ANONYMIZED";
                return DicomElement.Text(element.Tag, vr, value);
            }

            return DicomElement.Create(element.Tag, vr, new byte[element.Value.Length]);
        }

        private DicomElement ReplaceUids(DicomElement element, DicomDataset owner)
        {
            var uids = DecodeRaw(element, owner).Split('\\').Select(u => u.Trim('\0', ' ')).Select(u => u.Length == 0 ? u : _keys.ReplacementUid(u));
            return DicomElement.Text(element.Tag, DicomVR.UI, string.Join('\\', uids));
        }

        private DicomElement Clean(DicomElement element, DicomDataset owner)
        {
            var vr = element.EffectiveVR;
            if (vr == DicomVR.UI)
            {
                return ReplaceUids(element, owner);
            }

            if (vr == DicomVR.DA || vr == DicomVR.DT)
            {
                return _dateShift is { } days ? ShiftDates(element, owner, days) : DicomElement.Create(element.Tag, vr, ReadOnlyMemory<byte>.Empty);
            }

            if (vr == DicomVR.TM || !vr.IsText)
            {
                // Times of day and codes carry no date; under the options that clean them they are kept.
                return element;
            }

            return DicomElement.Create(element.Tag, vr, DicomValues.EncodeText(Scrub(DecodeRaw(element, owner)), vr, Utf8));
        }

        private DicomElement ShiftDates(DicomElement element, DicomDataset owner, int days)
        {
            var values = DecodeRaw(element, owner).Split('\\').Select(v => v.Trim());
            var shifted = values.Select(v =>
                v.Length >= 8 && DateOnly.TryParseExact(v[..8], "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
                    ? date.AddDays(-days).ToString("yyyyMMdd", CultureInfo.InvariantCulture) + v[8..]
                    : string.Empty);
            return DicomElement.Text(element.Tag, element.EffectiveVR, string.Join('\\', shifted));
        }

        private string Scrub(string text)
        {
            foreach (var identifier in _identifiers)
            {
                text = text.Replace(identifier, "***", StringComparison.OrdinalIgnoreCase);
            }

            return text;
        }

        // Identifying values anywhere in the header (every value the profile removes or replaces), and the
        // parts of names, longest first, so that cleaning free text removes them wherever they appear.
        private List<string> CollectIdentifiers(DicomDataset dataset)
        {
            var found = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var pending = new Stack<DicomDataset>();
            pending.Push(dataset);
            while (pending.Count > 0)
            {
                var current = pending.Pop();
                foreach (var element in current)
                {
                    foreach (var item in element.Sequence?.Items ?? [])
                    {
                        pending.Push(item.Dataset);
                    }

                    var vr = element.EffectiveVR;
                    // Identifiers are what the profile takes away; what it keeps or cleans is the text to clean.
                    if (!vr.IsText || element.Value.IsEmpty || ActionFor(element, current) is ProfileAction.Keep or ProfileAction.Clean)
                    {
                        continue;
                    }

                    var text = DicomValues.DecodeText(element.Value.Span, vr, current.CharacterSet);
                    foreach (var value in text.Split('\\'))
                    {
                        found.Add(value.Trim());
                        if (vr == DicomVR.PN)
                        {
                            foreach (var part in value.Split('^', '=', ' '))
                            {
                                found.Add(part.Trim());
                            }
                        }
                    }
                }
            }

            return found.Where(v => v.Length >= 3).OrderByDescending(v => v.Length).ToList();
        }

        private void RefuseBurnedInAnnotation(DicomDataset header)
        {
            if (_profile.AllowBurnedInAnnotation)
            {
                return;
            }

            var marked = header.GetString(DicomTag.BurnedInAnnotation);
            if (string.Equals(marked, "YES", StringComparison.OrdinalIgnoreCase))
            {
                throw new DeidentificationRefusedException("the image is marked as carrying burned-in annotation (0028,0301 = YES), which the proxy does not remove from the pixels; the de-identified view is refused");
            }

            var modality = header.GetString(DicomTag.Modality);
            var isImage = header.Contains(DicomTag.PixelData) || header.Contains(DicomTag.Rows);
            if (marked is null && isImage &&
                modality is not null && _profile.EffectiveSuspectedBurnedInModalities.Contains(modality, StringComparer.OrdinalIgnoreCase))
            {
                throw new DeidentificationRefusedException($"a {modality} image without Burned In Annotation (0028,0301) is suspected to carry burned-in text, which the proxy does not remove; the de-identified view is refused");
            }
        }

        private IEnumerable<DicomItem> MethodCodes(DicomDataset owner)
        {
            yield return Code("113100", "Basic Application Confidentiality Profile");
            foreach (var option in _options.Order())
            {
                yield return option switch
                {
                    DeidentificationOption.RetainSafePrivate => Code("113111", "Retain Safe Private Option"),
                    DeidentificationOption.RetainUids => Code("113110", "Retain UIDs Option"),
                    DeidentificationOption.RetainDeviceIdentity => Code("113109", "Retain Device Identity Option"),
                    DeidentificationOption.RetainInstitutionIdentity => Code("113112", "Retain Institution Identity Option"),
                    DeidentificationOption.RetainPatientCharacteristics => Code("113108", "Retain Patient Characteristics Option"),
                    DeidentificationOption.RetainLongitudinalFullDates => Code("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
                    DeidentificationOption.RetainLongitudinalModifiedDates => Code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
                    DeidentificationOption.CleanDescriptors => Code("113105", "Clean Descriptors Option"),
                    DeidentificationOption.CleanStructuredContent => Code("113104", "Clean Structured Content Option"),
                    DeidentificationOption.CleanGraphics => Code("113103", "Clean Graphics Option"),
                    _ => throw new InvalidOperationException(option.ToString()),
                };
            }

            DicomItem Code(string value, string meaning)
            {
                var item = new DicomDataset(owner.Encoding, parent: owner);
                item.Set(DicomElement.Text(CodeValue, DicomVR.SH, value));
                item.Set(DicomElement.Text(CodingSchemeDesignator, DicomVR.SH, "DCM"));
                item.Set(DicomElement.Text(CodeMeaning, DicomVR.LO, meaning));
                return new DicomItem(item, UndefinedLength: false);
            }
        }

        private static DicomSequence? ParseUnknownSequence(DicomElement element, DicomDataset owner)
        {
            try
            {
                return DicomFileReader.ParseImplicitSequence(element.Tag, element.Value, owner);
            }
            catch (DicomFormatException)
            {
                return null;
            }
        }

        private static string DecodeRaw(DicomElement element, DicomDataset owner) =>
            DicomValues.DecodeText(element.Value.Span, element.EffectiveVR, owner.CharacterSet);

        private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];

        private static readonly SpecificCharacterSet Utf8 = SpecificCharacterSet.Parse("ISO_IR 192");
    }
}
