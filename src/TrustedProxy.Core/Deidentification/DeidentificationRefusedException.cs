namespace TrustedProxy.Deidentification;

/// <summary>The de-identified view of this object cannot be given (for example, burned-in text the proxy does not clean).</summary>
public sealed class DeidentificationRefusedException(string reason) : Exception(reason);
