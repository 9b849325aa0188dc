using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Asn1.X9;
using TrustedProxy.Crypto;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace TrustedProxy.Audit;

/// <summary>
/// The key that signs audit checkpoints: ECDSA P-256 with SHA-256, derived from the proxy's master
/// key (HKDF, info <see cref="ProxyKeyRing.AuditSigningInfo"/>), so there is no further secret to
/// keep. Its public half is exported (<c>tproxy audit public-key</c>, <c>GET /api/v1/audit/public-key</c>)
/// so that a verifier elsewhere checks checkpoints without the master key.
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

    public static AuditSigningKey FromKeyRing(ProxyKeyRing keys)
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
        var signature = _key.SignData(unsigned.SignedBytes(), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        return unsigned with { Signature = Convert.ToBase64String(signature) };
    }

    public void Dispose() => _key.Dispose();
}

/// <summary>The public half of the audit key: checks checkpoints. Its id is the first 16 bytes of SHA-256 over its SubjectPublicKeyInfo, hex.</summary>
public sealed class AuditPublicKey
{
    private readonly ECDsa _key;

    private AuditPublicKey(ECDsa key, byte[] subjectPublicKeyInfo)
    {
        _key = key;
        KeyId = Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo).AsSpan(0, 16));
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
