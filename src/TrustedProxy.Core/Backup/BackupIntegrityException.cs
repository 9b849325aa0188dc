namespace TrustedProxy.Backup;

/// <summary>A backup object or generation failed its check: altered, swapped, truncated or of another key.</summary>
public sealed class BackupIntegrityException(string message) : Exception(message);
