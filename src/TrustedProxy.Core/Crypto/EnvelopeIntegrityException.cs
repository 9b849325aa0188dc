namespace TrustedProxy.Crypto;

/// <summary>
/// Stored ciphertext failed authentication: it was altered, truncated, reordered, or belongs to
/// another object. No plaintext from the failing segment onwards is ever released.
/// </summary>
public sealed class EnvelopeIntegrityException(string message) : Exception(message);
