using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TrustedProxy.Export;

/// <summary>
/// Who a bundle is for: the EC P-256 public key of a member certificate, the key every record's
/// content key is wrapped to (ECIES: ephemeral ECDH, HKDF-SHA256, AES-256-GCM).
/// </summary>
internal sealed class ExportRecipient : IDisposable
{
    private readonly ECDiffieHellman _key;

    private ExportRecipient(ECDiffieHellman key, X509Certificate2 certificate)
    {
        _key = key;
        Certificate = certificate;
        KeyId = ExportFormat.KeyId(key);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>SHA-256 of the recipient's SubjectPublicKeyInfo: what the bundle names it by.</summary>
    public byte[] KeyId { get; }

    /// <summary>The recipient of a certificate with an EC P-256 key; anything else is refused (the CA issues P-256 members).</summary>
    public static ExportRecipient FromCertificate(X509Certificate2 certificate)
    {
        // The member certificate's key is an ECDSA key (key usage digitalSignature), used here for
        // ECDH as well: .NET's GetECDiffieHellmanPublicKey() refuses it for its key usage, so the
        // key is taken from the SubjectPublicKeyInfo. docs/export.md says why that reuse is sound.
        if (certificate.PublicKey.Oid.Value != "1.2.840.10045.2.1")
        {
            throw new ExportBundleException("the recipient certificate does not carry an EC key; export needs an EC P-256 member certificate");
        }

        var key = ECDiffieHellman.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(certificate.PublicKey.ExportSubjectPublicKeyInfo(), out _);
            if (key.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            {
                throw new ExportBundleException("the recipient certificate's key is not on P-256; export needs an EC P-256 member certificate");
            }
        }
        catch (CryptographicException)
        {
            key.Dispose();
            throw new ExportBundleException("the recipient certificate's key cannot be read as an EC P-256 key");
        }
        catch
        {
            key.Dispose();
            throw;
        }

        return new ExportRecipient(key, certificate);
    }

    /// <summary>Wraps a content key to the recipient: returns the ephemeral public point (65) and the wrapped key (48).</summary>
    public (byte[] Ephemeral, byte[] Wrapped) Wrap(ReadOnlySpan<byte> contentKey, ReadOnlySpan<byte> bundleId, int recordIndex, string handle, string view)
    {
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var point = ExportFormat.EncodePoint(ephemeral);
        var secret = ephemeral.DeriveRawSecretAgreement(_key.PublicKey);
        var wrappingKey = ExportFormat.WrappingKey(secret, point, KeyId, bundleId, recordIndex);
        try
        {
            var wrapped = new byte[ExportFormat.WrappedKeyLength];
            using var aes = new AesGcm(wrappingKey, ExportFormat.TagLength);

            // The wrapping key is derived from a fresh ephemeral key and used once, so a zero nonce is unique for it.
            aes.Encrypt(new byte[12], contentKey, wrapped.AsSpan(0, ExportFormat.ContentKeyLength), wrapped.AsSpan(ExportFormat.ContentKeyLength), ExportFormat.WrapAssociatedData(handle, view));
            return (point, wrapped);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(wrappingKey);
        }
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
