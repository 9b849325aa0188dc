namespace TrustedProxy.CertificateAuthority;

/// <summary>
/// Where the passphrase of the CA private key comes from: the environment variable
/// <c>TPROXY_CA_PASSPHRASE</c> when set, otherwise the key file next to the key.
/// </summary>
public static class CaPassphrase
{
    /// <summary>The environment variable that carries a passphrase typed or injected by an operator.</summary>
    public const string EnvironmentVariable = "TPROXY_CA_PASSPHRASE";

    /// <summary>The passphrase, or null when neither the variable nor the key file provides one.</summary>
    public static string? Resolve(CertificateAuthorityPaths paths, string? keyFileOverride = null)
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }

        var keyFile = keyFileOverride ?? paths.CaKeyFile;
        return File.Exists(keyFile) ? Crypto.SecretFile.ReadText(keyFile).Trim() : null;
    }
}
