using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Crypto;

namespace TrustedProxy.KeyEscrow;

/// <summary>
/// A share as a small text file for its custodian: <c>name: value</c> lines after a format line,
/// comments saying what the file is, and a check value binding every field, so that a share
/// damaged in storage or mistyped is named as such before anything is combined.
/// </summary>
/// <remarks>
/// The check value is SHA-256, not a MAC: a custodian on a fresh machine holds no key to verify a
/// MAC with. It catches accidents. A share altered on purpose, check value recomputed, passes it;
/// the key check after combining (<see cref="MasterKeyEscrow.Recover"/>) catches that instead.
/// </remarks>
internal static class KeyShareFile
{
    /// <summary>The first line's value; a later format gets a new number and this reader refuses it by name.</summary>
    public const string Format = "tproxy-key-share/1";

    private const string FormatPrefix = "tproxy-key-share/";

    private static readonly string[] Fields = ["format", "installation", "split", "threshold", "shares", "index", "share", "check"];

    /// <summary>Names the split (its first 8 hex digits) so that shares of two splits in one place do not collide.</summary>
    public static string FileName(string splitId, int index, int shareCount) =>
        $"tproxy-key-share-{splitId[..8]}-{index}-of-{shareCount}.txt";

    public static string ToText(KeyShare share)
    {
        var text = new StringBuilder();
        text.Append("# TrustedProxy master-key share ").Append(share.Index).Append(" of ").Append(share.ShareCount)
            .Append(": any ").Append(share.Threshold).Append(" shares of this split rebuild the proxy's master key; fewer reveal nothing of it.\n");
        text.Append("# Keep it secret and apart from the other shares. Check a set with 'tproxy keys verify-shares'.\n");
        text.Append(Canonical(share)).Append("check: ").Append(Convert.ToHexStringLower(Check(share))).Append('\n');
        return text.ToString();
    }

    /// <summary>Writes the share owner-only (0600); refuses to replace an existing file.</summary>
    public static void Write(string path, KeyShare share)
    {
        if (File.Exists(path))
        {
            throw new IOException($"'{path}' exists; a share is never overwritten");
        }

        SecretFile.WriteText(path, ToText(share));
    }

    /// <summary>
    /// Reads a share. Unlike the key files, a share readable by others is accepted: shares come back
    /// from custodians on whatever medium they kept them, and one share alone reveals nothing.
    /// </summary>
    public static KeyShare Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new KeyShareException($"no share file '{path}'");
        }

        // A share is a few hundred bytes; anything large is some other file, read no further.
        if (new FileInfo(path).Length > 4096)
        {
            throw new KeyShareException($"'{path}' is not a TrustedProxy key share (too large)");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static KeyShare Parse(string text, string source)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var number = 1; number <= lines.Length; number++)
        {
            var line = lines[number - 1].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var colon = line.IndexOf(':');
            var name = colon > 0 ? line[..colon].Trim() : null;
            if (values.Count == 0 && name != "format")
            {
                throw new KeyShareException($"'{source}' is not a TrustedProxy key share (no '{Format}' line first)");
            }

            if (name is null || !Fields.Contains(name))
            {
                // By number, never by content: a line with a damaged name may be the share's.
                throw Corrupted(source, $"line {number} is not one of its fields");
            }

            if (!values.TryAdd(name, line[(colon + 1)..].Trim()))
            {
                throw Corrupted(source, $"'{name}' twice");
            }
        }

        if (values.Count == 0)
        {
            throw new KeyShareException($"'{source}' is not a TrustedProxy key share (it is empty)");
        }

        if (values["format"] != Format)
        {
            throw values["format"].StartsWith(FormatPrefix, StringComparison.Ordinal)
                ? new KeyShareException($"'{source}' is a key share of format '{values["format"]}'; this tproxy reads '{Format}'")
                : new KeyShareException($"'{source}' is not a TrustedProxy key share (format '{Truncate(values["format"])}')");
        }

        if (Fields.FirstOrDefault(f => !values.ContainsKey(f)) is { } missing)
        {
            throw Corrupted(source, $"no '{missing}' line");
        }

        var installation = Hex(values, "installation", MasterKeyEscrow.InstallationIdBytes, source);
        var split = Hex(values, "split", MasterKeyEscrow.SplitIdBytes, source);
        var threshold = Number(values, "threshold", source);
        var count = Number(values, "shares", source);
        var index = Number(values, "index", source);
        var value = Convert.FromHexString(Hex(values, "share", ProxyKeyRing.MasterKeyBytes, source));
        var check = Convert.FromHexString(Hex(values, "check", SHA256.HashSizeInBytes, source));
        var share = new KeyShare(installation, split, threshold, count, (byte)index, value, source);

        // Checked before the ranges: a damaged digit shows up as a wrong check value, the one message
        // that says what happened, rather than as whichever field it happened to land in.
        if (!CryptographicOperations.FixedTimeEquals(check, Check(share)))
        {
            share.Dispose();
            throw Corrupted(source, "its check value does not match its content");
        }

        // Only a share written by something other than tproxy gets here with a matching check value.
        if (MasterKeyEscrow.Validate(threshold, count).Count > 0 || index < 1 || index > count)
        {
            share.Dispose();
            throw Corrupted(source, $"threshold {threshold}, {count} shares and index {index} are not a valid split");
        }

        return share;
    }

    // The fields in a fixed order, one per line, as written; the check value covers exactly this text.
    private static string Canonical(KeyShare share) =>
        $"format: {Format}\n" +
        $"installation: {share.InstallationId}\n" +
        $"split: {share.SplitId}\n" +
        $"threshold: {share.Threshold}\n" +
        $"shares: {share.ShareCount}\n" +
        $"index: {share.Index}\n" +
        $"share: {Convert.ToHexStringLower(share.Value)}\n";

    private static byte[] Check(KeyShare share) => SHA256.HashData(Encoding.UTF8.GetBytes(Canonical(share)));

    private static string Hex(Dictionary<string, string> values, string name, int bytes, string source)
    {
        var value = values[name];
        if (value.Length != bytes * 2 || !value.All(char.IsAsciiHexDigit))
        {
            throw Corrupted(source, $"'{name}' is not {bytes} bytes of hex");
        }

        return value.ToLowerInvariant();
    }

    private static int Number(Dictionary<string, string> values, string name, string source) =>
        int.TryParse(values[name], NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number <= 255
            ? number
            : throw Corrupted(source, $"'{name}' is not a number from 0 to 255");

    private static KeyShareException Corrupted(string source, string what) =>
        new($"'{source}' is a corrupted key share: {what}");

    private static string Truncate(string text) => text.Length <= 24 ? text : text[..24] + "…";
}
