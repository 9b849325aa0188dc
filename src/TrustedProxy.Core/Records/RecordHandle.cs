using System.Security.Cryptography;

namespace TrustedProxy.Records;

/// <summary>
/// The opaque name a client uses for a record: 128 random bits in lowercase base32 (26 characters).
/// It is not the cloud object's name, so a handle seen by a hospital says nothing about which
/// object in the cloud holds the record.
/// </summary>
public static class RecordHandle
{
    /// <summary>Length of a handle in characters.</summary>
    public const int Length = 26;
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>A fresh random handle.</summary>
    public static string New()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        Span<char> chars = stackalloc char[Length];
        int buffer = 0, bits = 0, index = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[index++] = Alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        chars[index] = Alphabet[(buffer << (5 - bits)) & 31];
        return new string(chars);
    }

    /// <summary>Whether <paramref name="text"/> has the form of a handle (it may still be unknown).</summary>
    public static bool IsWellFormed(string? text) => text is { Length: Length } && text.All(c => Alphabet.Contains(c));
}
