namespace TrustedProxy.Dicom;

/// <summary>What to do with a file whose 128-byte preamble holds an executable header.</summary>
public enum ExecutablePreamblePolicy
{
    /// <summary>Store the file with its preamble zeroed (the default), and say so.</summary>
    Zero,

    /// <summary>Refuse the file.</summary>
    Refuse,
}

/// <summary>What the guard found and did.</summary>
public sealed record PreambleFinding(string Format, bool Zeroed)
{
    public string Message => Zeroed
        ? $"the 128-byte preamble held an executable header ({Format}) and was zeroed (DICOM/executable polyglot, CVE-2019-11687)"
        : $"the 128-byte preamble holds an executable header ({Format}) (DICOM/executable polyglot, CVE-2019-11687)";
}

/// <summary>
/// The preamble of a Part 10 file is free for applications, which lets a file be a valid DICOM
/// object and a valid Windows executable at once (CVE-2019-11687). The guard looks at the preamble
/// before anything else reads the body and either zeroes it or refuses the file. TIFF headers
/// (dual-personality DICOM/TIFF files) are legitimate and kept.
/// </summary>
public static class PreambleGuard
{
    private static readonly (string Format, byte[] Magic)[] Executables =
    [
        ("PE/MZ", "MZ"u8.ToArray()),
        ("ELF", [0x7F, (byte)'E', (byte)'L', (byte)'F']),
        ("Mach-O", [0xCF, 0xFA, 0xED, 0xFE]),
        ("Mach-O", [0xCE, 0xFA, 0xED, 0xFE]),
        ("Mach-O universal", [0xCA, 0xFE, 0xBA, 0xBE]),
        ("script", "#!"u8.ToArray()),
    ];

    /// <summary>The executable format the preamble starts with, if any.</summary>
    public static string? DetectExecutable(ReadOnlySpan<byte> preamble)
    {
        foreach (var (format, magic) in Executables)
        {
            if (preamble.StartsWith(magic))
            {
                return format;
            }
        }

        return null;
    }

    /// <summary>
    /// Reads the first 132 bytes of <paramref name="body"/> and returns a stream that yields the
    /// (possibly zeroed) file; a refused file throws <see cref="DicomFormatException"/>.
    /// </summary>
    public static async Task<(Stream Body, PreambleFinding? Finding)> InspectAsync(Stream body, ExecutablePreamblePolicy policy, CancellationToken cancellationToken)
    {
        var head = new byte[132];
        var read = await body.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        Array.Resize(ref head, read);
        PreambleFinding? finding = null;
        if (read == 132 && head.AsSpan(128, 4).SequenceEqual("DICM"u8) && DetectExecutable(head.AsSpan(0, 128)) is { } format)
        {
            if (policy == ExecutablePreamblePolicy.Refuse)
            {
                throw new DicomFormatException(DicomFormatProblem.ExecutablePreamble, 0, new PreambleFinding(format, false).Message + "; the file is refused");
            }

            head.AsSpan(0, 128).Clear();
            finding = new PreambleFinding(format, true);
        }

        return (new PrefixedStream(head, body), finding);
    }
}
