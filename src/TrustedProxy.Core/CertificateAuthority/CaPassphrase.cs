using System.Security.Cryptography;
using TrustedProxy.Crypto;

namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Where the CA key's passphrase comes from, never from beside the key (docs/certificate-authority.md):
/// the environment (<see cref="EnvironmentVariable"/>, typed or injected by an operator), a file the
/// deployer names (<c>--key-file</c>), or, by default, derived from the master key (HKDF, its own
/// purpose), so that the k-of-n shares that recover the master key recover the CA key too, and the
/// certificates directory alone (a copy, a backup, a stolen disk partition) opens nothing. A CA made
/// before this keeps its passphrase file <c>certs/ca/ca.key.secret</c> until <c>tproxy ca
/// passphrase</c> re-encrypts the key and removes the file.
/// </summary>
internal static class CaPassphrase
{
    /// <summary>The environment variable that carries a passphrase typed or injected by an operator.</summary>
    public const string EnvironmentVariable = "TPROXY_CA_PASSPHRASE";

    /// <summary>The HKDF purpose of the derived passphrase (versioned: changing it changes the passphrase).</summary>
    public const string Purpose = "TrustedProxy CA key passphrase v1";

    /// <summary>
    /// The passphrase to open the CA key: the environment's, else the named key file's, else the
    /// legacy key file beside the key, else derived from <paramref name="keys"/>; null when none applies.
    /// </summary>
    public static string? Resolve(CertificateAuthorityPaths paths, string? keyFileOverride = null, ProxyKeyRing? keys = null)
    {
        if (FromEnvironment() is { } fromEnvironment)
        {
            return fromEnvironment;
        }

        var keyFile = keyFileOverride ?? paths.CaKeyFile;
        if (File.Exists(keyFile))
        {
            return SecretFile.ReadText(keyFile).Trim();
        }

        return keys is null ? null : Derive(keys);
    }

    /// <summary>The passphrase a new CA key is encrypted with: the environment's, else derived from the master key.</summary>
    public static string ForNewKey(ProxyKeyRing keys) => FromEnvironment() ?? Derive(keys);

    /// <summary>The passphrase derived from the master key: 32 bytes of HKDF, base64.</summary>
    public static string Derive(ProxyKeyRing keys)
    {
        var bytes = keys.Derive(Purpose);
        try
        {
            return Convert.ToBase64String(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static string? FromEnvironment() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value ? value : null;
}
