using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TrustedProxy.Export;

/// <summary>
/// Signs bundles for the proxy with its server certificate's key: a certificate the federation's CA
/// issued for server authentication, which a member's certificate cannot pass for. The signature is
/// over a labelled hash (<see cref="ExportFormat.SignatureLabel"/>), never over data another protocol would sign.
/// </summary>
internal sealed class ExportSigner : IDisposable
{
    private readonly ECDsa _key;

    public ExportSigner(X509Certificate2 certificate)
    {
        _key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("the signing certificate needs its EC private key", nameof(certificate));
        CertificateDer = certificate.RawData;
    }

    public byte[] CertificateDer { get; }

    /// <summary>ECDSA over the transcript's hash, in IEEE P1363 form (r ‖ s).</summary>
    public byte[] Sign(ReadOnlySpan<byte> transcriptHash) => _key.SignHash(transcriptHash);

    public void Dispose() => _key.Dispose();
}
