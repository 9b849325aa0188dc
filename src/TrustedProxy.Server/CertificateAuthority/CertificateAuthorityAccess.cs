using TrustedProxy.CertificateAuthority;

namespace TrustedProxy.Server.CertificateAuthority;

/// <summary>
/// The server's hold on the CA. The private key is opened at start-up when a passphrase or key
/// file is available; without one the server still enforces the CRL but cannot issue or revoke.
/// CA operations are rare and mutate shared files, so they run one at a time.
/// </summary>
internal sealed class CertificateAuthorityAccess(ProxyCertificateAuthority? authority)
{
    private readonly Lock _gate = new();

    public bool Available => authority is not null;

    public T Use<T>(Func<ProxyCertificateAuthority, T> operation)
    {
        if (authority is null)
        {
            throw new CaKeyUnavailableException();
        }

        lock (_gate)
        {
            return operation(authority);
        }
    }
}

/// <summary>The server was started without access to the CA private key.</summary>
internal sealed class CaKeyUnavailableException() : Exception("the CA private key is not available to the server");
