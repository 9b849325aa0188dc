using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Asn1.X9;
using TrustedProxy.Crypto;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace TrustedProxy.Audit;

/// <summary>
/// A key that signs audit checkpoints: ECDSA P-256 with SHA-256. Since issue 16 each installation
/// generates its own at random (<see cref="Generate"/>) and keeps it wrapped in
/// <c>audit/audit-keys.json</c> (<see cref="AuditKeyStore"/>); logs begun before that were signed
/// by a key derived from the master key (<see cref="DeriveLegacy"/>), which stays derivable so that
/// their old checkpoints keep verifying. The public half is exported (<c>tproxy audit public-key</c>,
/// <c>GET /api/v1/audit/public-key</c>) so that a verifier elsewhere checks checkpoints without any secret.
/// </summary>
internal sealed class AuditSigningKey : IDisposable
{
    public const string Curve = "P-256";

    // FIPS 186-5 A.2.1: 64 bits more than the order's length make the reduction's bias negligible.
    private const int DerivedBytes = 32 + 8;

    private readonly ECDsa _key;

    private AuditSigningKey(ECDsa key)
    {
        _key = key;
        PublicKey = AuditPublicKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo());
    }

    public AuditPublicKey PublicKey { get; }

    /// <summary>A fresh key from the operating system's CSPRNG: nothing derives it, so the master key alone does not give it.</summary>
    public static AuditSigningKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Reads a private key as <see cref="ExportPkcs8"/> wrote it; the caller wipes <paramref name="pkcs8"/>.</summary>
    public static AuditSigningKey FromPkcs8(ReadOnlySpan<byte> pkcs8)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportPkcs8PrivateKey(pkcs8, out _);
        }
        catch
        {
            key.Dispose();
            throw;
        }

        if (key.KeySize != 256)
        {
            key.Dispose();
            throw new CryptographicException($"the audit key is EC with {key.KeySize} bits, not {Curve}");
        }

        return new AuditSigningKey(key);
    }

    /// <summary>The private key as PKCS#8 DER; the caller wraps it and wipes the buffer.</summary>
    public byte[] ExportPkcs8() => _key.ExportPkcs8PrivateKey();

    /// <summary>
    /// The key of logs begun before issue 16: derived from the master key (HKDF, info
    /// <see cref="ProxyKeyRing.AuditSigningInfo"/>). Kept only to verify, and to sign the one entry
    /// that hands such a log over to a generated key; whoever holds the master key can derive it.
    /// </summary>
    public static AuditSigningKey DeriveLegacy(ProxyKeyRing keys)
    {
        var material = keys.Derive(ProxyKeyRing.AuditSigningInfo, DerivedBytes);
        var curve = ECNamedCurveTable.GetByName("secp256r1");
        var scalar = new BcBigInteger(1, material).Mod(curve.N.Subtract(BcBigInteger.One)).Add(BcBigInteger.One);
        CryptographicOperations.ZeroMemory(material);
        var point = curve.G.Multiply(scalar).Normalize();
        var d = scalar.ToByteArrayUnsigned();
        var parameters = new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            D = [.. new byte[32 - d.Length], .. d],
            Q = new ECPoint { X = point.AffineXCoord.GetEncoded(), Y = point.AffineYCoord.GetEncoded() },
        };
        CryptographicOperations.ZeroMemory(d);
        var key = ECDsa.Create();
        try
        {
            key.ImportParameters(parameters);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(parameters.D);
        }

        return new AuditSigningKey(key);
    }

    /// <summary>Signs the tree head <paramref name="size"/>, <paramref name="root"/> at <paramref name="time"/>.</summary>
    public AuditCheckpoint Sign(long size, string root, string time)
    {
        var unsigned = new AuditCheckpoint(PublicKey.KeyId, size, root, time, string.Empty);
        return unsigned with { Signature = SignText(unsigned.SignedBytes()) };
    }

    /// <summary>Signs other statements of the log (a key rotation); each names its format in its first line, so none passes for a checkpoint.</summary>
    public string SignText(byte[] text) =>
        Convert.ToBase64String(_key.SignData(text, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));

    public void Dispose() => _key.Dispose();
}

/// <summary>
/// What an <c>audit-key</c> entry states when the log's checkpoints change key: the previous key
/// hands over to the next. Signed by both: the previous key endorses the next (so the chain of keys
/// is verifiable from the first one a verifier trusts), and the next proves it holds its private
/// key (so nobody can hand over to a public key whose owner did not agree, e.g. a verifier's pin).
/// </summary>
internal static class AuditKeyHandover
{
    public const string FormatName = "TrustedProxy audit key handover v1";

    public static byte[] SignedBytes(string previousKeyId, string keyId, string subjectPublicKeyInfoBase64) =>
        Encoding.UTF8.GetBytes($"{FormatName}\nprevious {previousKeyId}\nkey {keyId}\npublic {subjectPublicKeyInfoBase64}\n");
}

/// <summary>
/// The public keys a verifier trusts as the first key of a log's chain of audit keys: the key
/// the log's first checkpoint (or first handover) is signed with must be one of them; later keys
/// are trusted because the log hands over to them (<see cref="AuditKeyHandover"/>).
/// By default the first key of the local key store; pinned, the PEM a compliance officer kept.
/// </summary>
public sealed class AuditKeyTrust
{
    private readonly Dictionary<string, AuditPublicKey> _keys;

    private AuditKeyTrust(IEnumerable<AuditPublicKey> keys) => _keys = keys.ToDictionary(k => k.KeyId);

    public IReadOnlyCollection<AuditPublicKey> Keys => _keys.Values;

    public static AuditKeyTrust Of(params AuditPublicKey[] keys) => new(keys.DistinctBy(k => k.KeyId));

    /// <summary>One or more PEM public keys, one after the other (what <c>tproxy audit public-key</c> prints).</summary>
    public static AuditKeyTrust FromPem(string pem)
    {
        var keys = new List<AuditPublicKey>();
        const string End = "-----END PUBLIC KEY-----";
        var rest = pem;
        for (var end = rest.IndexOf(End, StringComparison.Ordinal); end >= 0; end = rest.IndexOf(End, StringComparison.Ordinal))
        {
            keys.Add(AuditPublicKey.FromPem(rest[..(end + End.Length)]));
            rest = rest[(end + End.Length)..];
        }

        return keys.Count == 0 ? throw new FormatException("not a PEM EC public key") : Of([.. keys]);
    }

    public AuditPublicKey? Find(string keyId) => _keys.GetValueOrDefault(keyId);

    public string Describe() => string.Join(", ", _keys.Keys);
}

/// <summary>The public half of the audit key: checks checkpoints. Its id is the first 16 bytes of SHA-256 over its SubjectPublicKeyInfo, hex.</summary>
public sealed class AuditPublicKey
{
    private readonly ECDsa _key;

    private AuditPublicKey(ECDsa key, byte[] subjectPublicKeyInfo)
    {
        _key = key;
        KeyId = Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo).AsSpan(0, 16));
        SubjectPublicKeyInfoBase64 = Convert.ToBase64String(subjectPublicKeyInfo);
        Pem = PemEncoding.WriteString("PUBLIC KEY", subjectPublicKeyInfo) + "\n";
    }

    public string KeyId { get; }

    /// <summary>SubjectPublicKeyInfo as PEM, as <c>openssl</c> reads it.</summary>
    public string Pem { get; }

    /// <summary>Reads a P-256 public key from PEM; anything else is refused with a message saying what was found.</summary>
    public static AuditPublicKey FromPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new FormatException("not a PEM EC public key");
        }

        if (key.KeySize != 256)
        {
            key.Dispose();
            throw new FormatException($"the key is EC with {key.KeySize} bits; the audit key is {AuditSigningKey.Curve}");
        }

        return new AuditPublicKey(key, key.ExportSubjectPublicKeyInfo());
    }

    /// <summary>SubjectPublicKeyInfo, base64 (as a handover entry and the key store carry it).</summary>
    public string SubjectPublicKeyInfoBase64 { get; }

    internal static AuditPublicKey FromSubjectPublicKeyInfo(byte[] subjectPublicKeyInfo)
    {
        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        return new AuditPublicKey(key, subjectPublicKeyInfo);
    }

    /// <summary>Whether this key signed <paramref name="checkpoint"/> (its key id must be this key's too).</summary>
    public bool Verifies(AuditCheckpoint checkpoint)
    {
        if (checkpoint.KeyId != KeyId)
        {
            return false;
        }

        byte[] signature;
        try
        {
            signature = Convert.FromBase64String(checkpoint.Signature);
        }
        catch (FormatException)
        {
            return false;
        }

        return _key.VerifyData(checkpoint.SignedBytes(), signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary>Whether <paramref name="signatureBase64"/> is this key's signature over <paramref name="text"/> (a handover).</summary>
    internal bool VerifiesText(byte[] text, string? signatureBase64)
    {
        byte[] signature;
        try
        {
            signature = Convert.FromBase64String(signatureBase64 ?? string.Empty);
        }
        catch (FormatException)
        {
            return false;
        }

        return signature.Length > 0 && _key.VerifyData(text, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }
}

/// <summary>
/// A signed tree head: the log's first <see cref="Size"/> entries have the RFC 6962 Merkle root
/// <see cref="Root"/> (hex), attested at <see cref="Time"/> by the audit key <see cref="KeyId"/>.
/// The signature (ECDSA P-256, SHA-256, DER, base64) covers <see cref="SignedText"/>. Kept
/// elsewhere, it lets <c>tproxy audit verify --checkpoint</c> detect a log rolled back or rewritten.
/// </summary>
public sealed record AuditCheckpoint(string KeyId, long Size, string Root, string Time, string Signature)
{
    public const string FormatName = "TrustedProxy audit checkpoint v1";

    /// <summary>Names the format in files, so that a checkpoint is recognised for what it is.</summary>
    [JsonPropertyOrder(-1)]
    public string Format => FormatName;

    /// <summary>Exactly what is signed: the format, then one "name value" line per field. Rebuilt from the fields, never stored.</summary>
    [JsonIgnore]
    public string SignedText => $"{FormatName}\nkey {KeyId}\nsize {Size}\nroot {Root}\ntime {Time}\n";

    internal byte[] SignedBytes() => Encoding.UTF8.GetBytes(SignedText);
}
