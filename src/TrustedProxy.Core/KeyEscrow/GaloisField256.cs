namespace TrustedProxy.KeyEscrow;

/// <summary>
/// The field GF(2^8) with the reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11B), the field of
/// AES (FIPS 197, section 4), so published vectors check it. Addition is XOR.
/// </summary>
/// <remarks>
/// Every operation runs in constant time: a fixed number of rounds whatever the operands, with the
/// operands acting through masks rather than branches or table indices. The log/exp tables of the
/// textbook would index memory by the secret byte, and which cache line is touched can be measured.
/// </remarks>
internal static class GaloisField256
{
    /// <summary>x^8 + x^4 + x^3 + x + 1, the AES polynomial; its low byte is what a carry out of x^7 folds back in.</summary>
    public const int ReductionPolynomial = 0x11B;

    public static byte Add(byte a, byte b) => (byte)(a ^ b);

    /// <summary>Carry-less multiplication modulo <see cref="ReductionPolynomial"/>: shift-and-add over the eight bits of <paramref name="b"/>.</summary>
    public static byte Multiply(byte a, byte b)
    {
        int product = 0, shifted = a, multiplier = b;
        for (var bit = 0; bit < 8; bit++)
        {
            // -(bit) is all ones when the bit is set and zero otherwise: a selection without a branch.
            product ^= shifted & -(multiplier & 1);
            var carry = -((shifted >> 7) & 1);
            shifted = ((shifted << 1) ^ (ReductionPolynomial & carry)) & 0xFF;
            multiplier >>= 1;
        }

        return (byte)product;
    }

    /// <summary>
    /// The multiplicative inverse, a^254 (the nonzero elements form a group of order 255), and 0 for 0.
    /// The exponent is public and fixed, so square-and-multiply over it is constant time.
    /// </summary>
    public static byte Inverse(byte a)
    {
        // 254 = 0b1111_1110: the product of a^(2^i) for i = 1..7.
        byte result = 1, power = a;
        for (var i = 1; i < 8; i++)
        {
            power = Multiply(power, power);
            result = Multiply(result, power);
        }

        return result;
    }
}
