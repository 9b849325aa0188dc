namespace TrustedProxy.Watermarking;

/// <summary>Why an image was not watermarked. Stable: the server maps each to a response.</summary>
internal enum WatermarkRefusalReason
{
    /// <summary>The pixel data is encapsulated (a compressed transfer syntax): no codec runs here, so the pixels are not touched.</summary>
    NotNative,

    /// <summary>The object has no (native) Pixel Data, or the attributes describing it are missing or inconsistent.</summary>
    NoPixelData,

    /// <summary>A layout this scheme does not mark: 1-bit, subsampled YBR, palette colour, floating point, other sample counts.</summary>
    UnsupportedLayout,

    /// <summary>A frame is too small to hold the fixed header and the payload.</summary>
    TooSmall,

    /// <summary>A frame cannot carry the payload: not enough predictable pixels at any allowed expansion threshold.</summary>
    InsufficientCapacity,

    /// <summary>The payload fits, but only by degrading a frame below the configured PSNR floor.</summary>
    QualityFloor,
}

/// <summary>A refusal with its reason and a message naming the numbers behind it (no patient data).</summary>
internal sealed record WatermarkRefusal(WatermarkRefusalReason Reason, string Message)
{
    public override string ToString() => $"{Reason}: {Message}";
}

/// <summary>
/// Thrown inside the watermarking code when an image cannot be marked; the public entry points
/// catch it and return the refusal, with the input untouched.
/// </summary>
internal sealed class WatermarkRefusedException(WatermarkRefusalReason reason, string message) : Exception(message)
{
    public WatermarkRefusalReason Reason { get; } = reason;

    public WatermarkRefusal Refusal => new(Reason, Message);
}
