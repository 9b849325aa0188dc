using System.Security.Cryptography;

namespace TrustedProxy.Storage;

/// <summary>
/// The name of an object in the cloud: 128 bits from a CSPRNG, written as 32 lowercase hex digits.
/// It is chosen by the proxy and carries nothing about the patient, the hospital, the time or the
/// order of uploads; the mapping from records to names lives only in the proxy's index.
/// </summary>
public readonly record struct ObjectName
{
    /// <summary>Length of the name's value in bytes.</summary>
    public const int Bytes = 16;

    private readonly string _hex;

    private ObjectName(string hex) => _hex = hex;

    /// <summary>Draws a fresh random name.</summary>
    public static ObjectName NewRandom() => new(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(Bytes)));

    /// <summary>Parses a name as stored by a backend; returns false for anything that is not 32 lowercase hex digits.</summary>
    public static bool TryParse(string? text, out ObjectName name)
    {
        name = default;
        if (text is null || text.Length != Bytes * 2)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        name = new ObjectName(text);
        return true;
    }

    /// <summary>Parses a name, throwing <see cref="FormatException"/> if it is not one.</summary>
    public static ObjectName Parse(string text) =>
        TryParse(text, out var name) ? name : throw new FormatException("an object name is 32 lowercase hex digits");

    /// <summary>The 16 bytes of the name, as bound into the envelope's associated data.</summary>
    public byte[] ToBytes() => Convert.FromHexString(_hex);

    /// <inheritdoc />
    public override string ToString() => _hex ?? throw new InvalidOperationException("default ObjectName");
}
