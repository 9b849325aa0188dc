using System.Text;

namespace TrustedProxy.Dicom;

/// <summary>
/// Specific Character Set (0008,0005): how text in SH, LO, ST, LT, UT, PN and UC values is encoded.
/// Single-byte sets, UTF-8, GB18030/GBK, and the ISO 2022 code extensions (PS3.5 6.1.2.5), where
/// escape sequences inside a value switch between sets and delimiters switch back to the default.
/// </summary>
public sealed class SpecificCharacterSet
{
    private const byte Escape = 0x1B;

    // Field initializers run in order and before any use: the code pages must be registered before
    // the character sets below look up their encodings.
    private static readonly bool CodePagesRegistered = RegisterCodePages();

    private readonly CharacterSet _initialG0;
    private readonly CharacterSet? _initialG1;
    private readonly Encoding? _singleEncoding;

    private SpecificCharacterSet(string declared, CharacterSet initialG0, CharacterSet? initialG1, Encoding? singleEncoding, bool usesCodeExtensions)
    {
        Declared = declared;
        _initialG0 = initialG0;
        _initialG1 = initialG1;
        _singleEncoding = singleEncoding;
        UsesCodeExtensions = usesCodeExtensions;
    }

    /// <summary>No (0008,0005): the default repertoire. Bytes above 0x7F are read as Latin-1 rather than lost.</summary>
    public static SpecificCharacterSet Default { get; } = new(string.Empty, CharacterSet.Ascii, null, Encoding.Latin1, false);

    /// <summary>The value of (0008,0005) this was parsed from.</summary>
    public string Declared { get; }

    public bool UsesCodeExtensions { get; }

    public bool IsUtf8 => _singleEncoding is UTF8Encoding;

    public static SpecificCharacterSet Parse(string? declared)
    {
        var terms = (declared ?? string.Empty).Split('\\').Select(t => t.Trim()).ToList();
        if (terms.All(t => t.Length == 0))
        {
            return Default;
        }

        var first = terms[0];
        if (!first.StartsWith("ISO 2022", StringComparison.Ordinal) && terms.Count == 1)
        {
            return new SpecificCharacterSet(declared!, CharacterSet.Ascii, null, SingleEncoding(first), false);
        }

        // With code extensions the first value is active at the start of every value; an empty first
        // value means ISO 2022 IR 6 (ASCII) in G0.
        var initial = first.Length == 0 ? CharacterSet.Ascii : CharacterSet.FromTerm(first);
        var g0 = initial.IsG0 ? initial : CharacterSet.Ascii;
        var g1 = initial.IsG0 ? (initial == CharacterSet.JisRomaji ? CharacterSet.JisKatakana : null) : initial;
        return new SpecificCharacterSet(declared!, g0, g1, null, true);
    }

    /// <summary>Decodes a value; in person names the component delimiters also switch back to the default set.</summary>
    public string Decode(ReadOnlySpan<byte> value, bool isPersonName = false)
    {
        if (!UsesCodeExtensions)
        {
            return _singleEncoding!.GetString(value);
        }

        var text = new StringBuilder(value.Length);
        var g0 = _initialG0;
        var g1 = _initialG1;
        var run = 0;
        for (var i = 0; i <= value.Length; i++)
        {
            var atEnd = i == value.Length;
            var b = atEnd ? (byte)0 : value[i];

            // Inside a two-byte G0 set (JIS X 0208/0212) bytes come in pairs, and a 0x5E or 0x3D
            // there is half a character, not a delimiter.
            if (!atEnd && b != Escape && b < 0x80 && g0.BytesPerCharacter == 2)
            {
                i++;
                continue;
            }

            var isEscape = !atEnd && b == Escape;
            var isDelimiter = !atEnd && (b is 0x0D or 0x0A or 0x0C or 0x09 || b == (byte)'\\' || (isPersonName && b is (byte)'^' or (byte)'='));
            if (!atEnd && !isEscape && !isDelimiter)
            {
                continue;
            }

            DecodeRun(value[run..i], g0, g1, text);
            if (atEnd)
            {
                break;
            }

            if (isDelimiter)
            {
                text.Append((char)b);
                g0 = _initialG0;
                g1 = _initialG1;
                run = i + 1;
                continue;
            }

            var (set, length) = CharacterSet.FromEscape(value[i..]);
            if (set is null)
            {
                // An escape sequence this decoder does not know: keep the byte visible rather than guess.
                text.Append('\uFFFD');
                run = i + 1;
                continue;
            }

            if (set.IsG0)
            {
                g0 = set;
            }
            else
            {
                g1 = set;
            }

            i += length - 1;
            run = i + 1;
        }

        return text.ToString();
    }

    /// <summary>Encodes text for writing. Values the proxy writes are ASCII, which every character set shares.</summary>
    public byte[] Encode(string value)
    {
        if (value.All(char.IsAscii))
        {
            return Encoding.ASCII.GetBytes(value);
        }

        return UsesCodeExtensions ? Encoding.UTF8.GetBytes(value) : _singleEncoding!.GetBytes(value);
    }

    // Within a run between escapes and delimiters, bytes below 0x80 belong to G0 and bytes above to G1.
    private static void DecodeRun(ReadOnlySpan<byte> run, CharacterSet g0, CharacterSet? g1, StringBuilder text)
    {
        var start = 0;
        while (start < run.Length)
        {
            var high = run[start] >= 0x80;
            var end = start + 1;
            while (end < run.Length && (run[end] >= 0x80) == high)
            {
                end++;
            }

            text.Append((high ? g1 ?? CharacterSet.Latin1Fallback : g0).Decode(run[start..end]));
            start = end;
        }
    }

    private static bool RegisterCodePages()
    {
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        return true;
    }

    private static Encoding SingleEncoding(string term) => term switch
    {
        "ISO_IR 6" => Encoding.Latin1,
        "ISO_IR 100" => Encoding.Latin1,
        "ISO_IR 101" => Encoding.GetEncoding(28592),
        "ISO_IR 109" => Encoding.GetEncoding(28593),
        "ISO_IR 110" => Encoding.GetEncoding(28594),
        "ISO_IR 144" => Encoding.GetEncoding(28595),
        "ISO_IR 127" => Encoding.GetEncoding(28596),
        "ISO_IR 126" => Encoding.GetEncoding(28597),
        "ISO_IR 138" => Encoding.GetEncoding(28598),
        "ISO_IR 148" => Encoding.GetEncoding(28599),
        "ISO_IR 203" => Encoding.GetEncoding(28605),
        "ISO_IR 166" => Encoding.GetEncoding(874),
        "ISO_IR 13" => Encoding.GetEncoding(932),
        "ISO_IR 192" => new UTF8Encoding(false, false),
        "GB18030" => Encoding.GetEncoding(54936),
        "GBK" => Encoding.GetEncoding(936),
        _ => Encoding.Latin1,
    };

    /// <summary>One graphic character set that ISO 2022 designates into G0 or G1.</summary>
    private sealed class CharacterSet
    {
        private static readonly bool Registered = RegisterCodePages();
        public static readonly CharacterSet Ascii = new("ISO 2022 IR 6", true, Encoding.ASCII, 1);
        public static readonly CharacterSet JisRomaji = new("ISO 2022 IR 13", true, Encoding.GetEncoding(932), 1);
        public static readonly CharacterSet JisKatakana = new("ISO 2022 IR 13 (G1)", false, Encoding.GetEncoding(932), 1);
        public static readonly CharacterSet Jis0208 = new("ISO 2022 IR 87", true, Encoding.GetEncoding(20932), 2, euc: true);
        public static readonly CharacterSet Jis0212 = new("ISO 2022 IR 159", true, Encoding.GetEncoding(20932), 2, euc: true, eucPrefix: 0x8F);
        public static readonly CharacterSet Ksx1001 = new("ISO 2022 IR 149", false, Encoding.GetEncoding(51949), 2);
        public static readonly CharacterSet Gb2312 = new("ISO 2022 IR 58", false, Encoding.GetEncoding(936), 2);
        public static readonly CharacterSet Latin1Fallback = new("ISO 2022 IR 100", false, Encoding.Latin1, 1);

        private static readonly Dictionary<string, CharacterSet> G1Singles = new()
        {
            ["ISO 2022 IR 100"] = Latin1Fallback,
            ["ISO 2022 IR 101"] = new("ISO 2022 IR 101", false, Encoding.GetEncoding(28592), 1),
            ["ISO 2022 IR 109"] = new("ISO 2022 IR 109", false, Encoding.GetEncoding(28593), 1),
            ["ISO 2022 IR 110"] = new("ISO 2022 IR 110", false, Encoding.GetEncoding(28594), 1),
            ["ISO 2022 IR 144"] = new("ISO 2022 IR 144", false, Encoding.GetEncoding(28595), 1),
            ["ISO 2022 IR 127"] = new("ISO 2022 IR 127", false, Encoding.GetEncoding(28596), 1),
            ["ISO 2022 IR 126"] = new("ISO 2022 IR 126", false, Encoding.GetEncoding(28597), 1),
            ["ISO 2022 IR 138"] = new("ISO 2022 IR 138", false, Encoding.GetEncoding(28598), 1),
            ["ISO 2022 IR 148"] = new("ISO 2022 IR 148", false, Encoding.GetEncoding(28599), 1),
            ["ISO 2022 IR 203"] = new("ISO 2022 IR 203", false, Encoding.GetEncoding(28605), 1),
            ["ISO 2022 IR 166"] = new("ISO 2022 IR 166", false, Encoding.GetEncoding(874), 1),
        };

        private readonly Encoding _encoding;
        private readonly bool _euc;
        private readonly byte _eucPrefix;

        private CharacterSet(string term, bool isG0, Encoding encoding, int bytesPerCharacter, bool euc = false, byte eucPrefix = 0)
        {
            Term = term;
            IsG0 = isG0;
            _encoding = encoding;
            BytesPerCharacter = bytesPerCharacter;
            _euc = euc;
            _eucPrefix = eucPrefix;
        }

        public string Term { get; }

        public bool IsG0 { get; }

        public int BytesPerCharacter { get; }

        public static CharacterSet FromTerm(string term) => term switch
        {
            "ISO 2022 IR 6" => Ascii,
            "ISO 2022 IR 13" => JisRomaji,
            "ISO 2022 IR 87" => Jis0208,
            "ISO 2022 IR 159" => Jis0212,
            "ISO 2022 IR 149" => Ksx1001,
            "ISO 2022 IR 58" => Gb2312,
            _ => G1Singles.GetValueOrDefault(term) ?? Ascii,
        };

        /// <summary>The set an escape sequence designates, and the sequence's length (PS3.3 C.12.1.1.2, tables C.12-3 and C.12-4).</summary>
        public static (CharacterSet? Set, int Length) FromEscape(ReadOnlySpan<byte> bytes)
        {
            static bool Is(ReadOnlySpan<byte> b, ReadOnlySpan<byte> sequence) => b.StartsWith(sequence);
            if (Is(bytes, "\u001b(B"u8)) return (Ascii, 3);
            if (Is(bytes, "\u001b(J"u8)) return (JisRomaji, 3);
            if (Is(bytes, "\u001b)I"u8)) return (JisKatakana, 3);
            if (Is(bytes, "\u001b$B"u8)) return (Jis0208, 3);
            if (Is(bytes, "\u001b$(D"u8)) return (Jis0212, 4);
            if (Is(bytes, "\u001b$)C"u8)) return (Ksx1001, 4);
            if (Is(bytes, "\u001b$)A"u8)) return (Gb2312, 4);
            if (bytes.Length >= 3 && bytes[1] == (byte)'-')
            {
                var term = bytes[2] switch
                {
                    (byte)'A' => "ISO 2022 IR 100",
                    (byte)'B' => "ISO 2022 IR 101",
                    (byte)'C' => "ISO 2022 IR 109",
                    (byte)'D' => "ISO 2022 IR 110",
                    (byte)'L' => "ISO 2022 IR 144",
                    (byte)'G' => "ISO 2022 IR 127",
                    (byte)'F' => "ISO 2022 IR 126",
                    (byte)'H' => "ISO 2022 IR 138",
                    (byte)'M' => "ISO 2022 IR 148",
                    (byte)'b' => "ISO 2022 IR 203",
                    (byte)'T' => "ISO 2022 IR 166",
                    _ => null,
                };
                if (term is not null)
                {
                    return (G1Singles[term], 3);
                }
            }

            return (null, 1);
        }

        public string Decode(ReadOnlySpan<byte> bytes)
        {
            if (!_euc)
            {
                return _encoding.GetString(bytes);
            }

            // JIS X 0208/0212 in G0 arrive as 7-bit pairs; their EUC-JP form sets the high bits
            // (and prefixes 0x8F for JIS X 0212), which .NET's EUC-JP decoder reads.
            var euc = new List<byte>(bytes.Length * 3 / 2);
            for (var i = 0; i + 1 < bytes.Length; i += 2)
            {
                if (_eucPrefix != 0)
                {
                    euc.Add(_eucPrefix);
                }

                euc.Add((byte)(bytes[i] | 0x80));
                euc.Add((byte)(bytes[i + 1] | 0x80));
            }

            return _encoding.GetString(euc.ToArray());
        }
    }
}
