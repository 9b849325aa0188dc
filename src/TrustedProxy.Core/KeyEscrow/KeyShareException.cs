namespace TrustedProxy.KeyEscrow;

/// <summary>A share, or a set of shares, cannot give the master key; the message names the file and the problem in one line.</summary>
internal sealed class KeyShareException(string message) : Exception(message);
