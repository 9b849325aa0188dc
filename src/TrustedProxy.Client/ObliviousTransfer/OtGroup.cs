using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto.EC;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Math.EC;
using Org.BouncyCastle.Math.EC.Multiplier;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Utilities;

namespace TrustedProxy.ObliviousTransfer;

/// <summary>A protocol message that is malformed, out of place or replayed; nothing was disclosed.</summary>
public sealed class OtProtocolException(string message) : Exception(message);

/// <summary>
/// The group of the oblivious-transfer protocol: NIST P-256 (secp256r1, cofactor 1), points in
/// SEC1 compressed form (33 bytes). Decoding checks that a point is on the curve and not the point
/// at infinity, so a peer cannot move the protocol into a small or degenerate subgroup.
/// </summary>
internal static class OtGroup
{
    public const string CurveName = "secp256r1";

    public const int PointBytes = OtProtocol.PointBytes;

    private static readonly X9ECParameters Parameters = CustomNamedCurves.GetByName(CurveName);
    private static readonly FixedPointCombMultiplier GeneratorMultiplier = new();
    private static readonly SecureRandom Random = new();

    public static ECCurve Curve => Parameters.Curve;

    public static ECPoint Generator => Parameters.G;

    public static BigInteger Order => Parameters.N;

    /// <summary>A uniform scalar in [1, n − 1].</summary>
    public static BigInteger RandomScalar() => BigIntegers.CreateRandomInRange(BigInteger.One, Order.Subtract(BigInteger.One), Random);

    public static ECPoint MultiplyGenerator(BigInteger scalar) => GeneratorMultiplier.Multiply(Generator, scalar).Normalize();

    public static byte[] Encode(ECPoint point) => point.Normalize().GetEncoded(compressed: true);

    /// <summary>Decodes a peer's point, refusing anything but a compressed point of the group other than infinity.</summary>
    public static ECPoint Decode(ReadOnlySpan<byte> encoded, string what)
    {
        if (encoded.Length != PointBytes || (encoded[0] != 0x02 && encoded[0] != 0x03))
        {
            throw new OtProtocolException($"{what} is not a compressed P-256 point ({PointBytes} bytes starting 02 or 03)");
        }

        ECPoint point;
        try
        {
            point = Curve.DecodePoint(encoded.ToArray());
        }
        catch (ArgumentException)
        {
            throw new OtProtocolException($"{what} is not a point of P-256");
        }

        if (point.IsInfinity || !point.IsValid())
        {
            throw new OtProtocolException($"{what} is not a valid point of P-256");
        }

        return point;
    }
}
