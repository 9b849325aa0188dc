using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Crypto;

/// <summary>
/// The proxy's secrets, all derived from one 256-bit master key that never leaves the proxy.
/// One file to protect and back up; each purpose gets its own HKDF-derived key so that no key
/// is ever used for two jobs.
/// </summary>
internal sealed class ProxyKeyRing : IDisposable
{
    public const int MasterKeyBytes = 32;

    // HKDF info strings: changing one changes every key derived from it, so they are versioned.
    // Key-encryption-key version 1 keeps the info string it always had, so records wrapped before
    // versions existed still open; later versions append their number (KeyEncryptionInfoFor).
    internal const string KeyEncryptionInfo = "TrustedProxy/key-encryption/v1";
    internal const string PatientPseudonymInfo = "TrustedProxy/patient-pseudonym/v1";
    internal const string DeidentifiedUidInfo = "TrustedProxy/deidentified-uid/v1";
    internal const string DateShiftInfo = "TrustedProxy/date-shift/v1";
    internal const string ResearchPseudonymInfo = "TrustedProxy/research-pseudonym/v1";
    internal const string AuditSigningInfo = "TrustedProxy/audit-signing/v1";

    private readonly byte[] _masterKey;

    private ProxyKeyRing(byte[] masterKey)
    {
        if (masterKey.Length != MasterKeyBytes)
        {
            throw new CryptographicException($"the master key must be {MasterKeyBytes} bytes, found {masterKey.Length}");
        }

        _masterKey = masterKey;
        KeyEncryptionKeys = new KeyEncryptionKeys(version => Derive(KeyEncryptionInfoFor(version)));
        IdentifierPseudonymKey = Derive(PatientPseudonymInfo);
    }

    /// <summary>Every version of the key-encryption key (derived on first use).</summary>
    public KeyEncryptionKeys KeyEncryptionKeys { get; }

    public byte[] IdentifierPseudonymKey { get; }

    /// <summary>Loads the master key from <paramref name="path"/>, creating a fresh random one (0600) on first run.</summary>
    public static ProxyKeyRing LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            var fresh = RandomNumberGenerator.GetBytes(MasterKeyBytes);
            WriteKeyFile(path, fresh);
            CryptographicOperations.ZeroMemory(fresh);
        }

        return FromBase64(SecretFile.ReadText(path).Trim());
    }

    /// <summary>Writes a key file as <see cref="LoadOrCreate"/> reads it (base64, 0600); an existing key is never replaced.</summary>
    public static void WriteKeyFile(string path, ReadOnlySpan<byte> masterKey)
    {
        if (masterKey.Length != MasterKeyBytes)
        {
            throw new CryptographicException($"the master key must be {MasterKeyBytes} bytes, found {masterKey.Length}");
        }

        if (File.Exists(path))
        {
            throw new IOException($"'{path}' exists; a master key is never overwritten");
        }

        SecretFile.WriteText(path, Convert.ToBase64String(masterKey) + "\n");
    }

    /// <summary>For deployments that inject the master key from a secret store instead of a file.</summary>
    public static ProxyKeyRing FromBase64(string masterKeyBase64)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(masterKeyBase64);
        }
        catch (FormatException)
        {
            throw new CryptographicException("the master key is not valid base64");
        }

        return new ProxyKeyRing(key);
    }

    public static ProxyKeyRing FromBytes(ReadOnlySpan<byte> masterKey) => new(masterKey.ToArray());

    /// <summary>The HKDF info of key-encryption-key <paramref name="version"/> (1 is the original key).</summary>
    internal static string KeyEncryptionInfoFor(int version) =>
        version == 1 ? KeyEncryptionInfo : $"{KeyEncryptionInfo}/version-{version.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Derives a purpose-bound 256-bit key; the caller owns and should wipe the result.</summary>
    public byte[] Derive(string purpose) => Derive(purpose, 32);

    /// <summary>Derives <paramref name="length"/> purpose-bound bytes (more than 32 where a key must be reduced modulo a group order without bias).</summary>
    public byte[] Derive(string purpose, int length) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _masterKey, length, salt: [], info: Encoding.UTF8.GetBytes(purpose));

    /// <summary>A copy of the master key itself, for key escrow only (<c>KeyEscrow/</c>); the caller wipes it.</summary>
    internal byte[] ExportMasterKey() => _masterKey.ToArray();

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_masterKey);
        CryptographicOperations.ZeroMemory(IdentifierPseudonymKey);
        KeyEncryptionKeys.Dispose();
    }
}
