using System.Security.Cryptography;

namespace TrustedProxy.KeyEscrow;

/// <summary>
/// Shamir's threshold scheme (Shamir, "How to share a secret", CACM 22(11), 1979) over
/// <see cref="GaloisField256"/>, one byte at a time: each byte of the secret is the constant term
/// of its own random polynomial of degree k-1, and share x holds every polynomial's value at x
/// (x = 1..n; x = 0 would be the secret itself). Any k shares determine the polynomials by Lagrange
/// interpolation; any k-1 are, for every value of the secret, produced by exactly one choice of the
/// random coefficients, so they say nothing about it.
/// </summary>
internal static class ShamirSecretSharing
{
    /// <summary>The field has 255 nonzero points to hand out.</summary>
    public const int MaxShares = 255;

    /// <summary>Splits with coefficients from <see cref="RandomNumberGenerator"/>.</summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int threshold, int shares) =>
        Split(secret, threshold, shares, RandomNumberGenerator.Fill);

    /// <summary>
    /// Returns <paramref name="shares"/> values; element i is the share at x = i + 1. The random
    /// source fills the coefficients in one call, byte j of the secret taking
    /// <c>[j·(k-1), (j+1)·(k-1))</c> as its coefficients of x^1 … x^(k-1); tests rely on that layout.
    /// </summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int threshold, int shares, Action<Span<byte>> fillRandom)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threshold, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threshold, shares);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shares, MaxShares);

        var degree = threshold - 1;
        var coefficients = new byte[secret.Length * degree];
        var result = new byte[shares][];
        try
        {
            fillRandom(coefficients);
            for (var i = 0; i < shares; i++)
            {
                var x = (byte)(i + 1);
                var value = new byte[secret.Length];
                for (var j = 0; j < secret.Length; j++)
                {
                    // Horner's rule from the highest coefficient down to the secret byte.
                    var terms = coefficients.AsSpan(j * degree, degree);
                    byte y = 0;
                    for (var c = degree - 1; c >= 0; c--)
                    {
                        y = GaloisField256.Add(GaloisField256.Multiply(y, x), terms[c]);
                    }

                    value[j] = GaloisField256.Add(GaloisField256.Multiply(y, x), secret[j]);
                }

                result[i] = value;
            }

            return result;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(coefficients);
        }
    }

    /// <summary>
    /// Interpolates the polynomials through the given points and returns their values at 0. With k
    /// or more shares of one split that is the secret; with fewer, or with points of different
    /// splits, it is some other value: the caller checks the result against a check value.
    /// </summary>
    public static byte[] Combine(IReadOnlyList<(byte X, byte[] Y)> points)
    {
        if (points.Count == 0)
        {
            throw new ArgumentException("no shares to combine", nameof(points));
        }

        var length = points[0].Y.Length;
        for (var i = 0; i < points.Count; i++)
        {
            if (points[i].X == 0 || points[i].Y.Length != length)
            {
                throw new ArgumentException($"share {i} has x = 0 or a length other than {length}", nameof(points));
            }

            for (var j = 0; j < i; j++)
            {
                if (points[i].X == points[j].X)
                {
                    throw new ArgumentException($"two shares at x = {points[i].X}", nameof(points));
                }
            }
        }

        // The Lagrange basis at 0, l_i(0) = prod_{j != i} x_j / (x_j - x_i), depends only on the
        // public x's; subtraction in GF(2^8) is XOR.
        var basis = new byte[points.Count];
        for (var i = 0; i < points.Count; i++)
        {
            byte numerator = 1, denominator = 1;
            for (var j = 0; j < points.Count; j++)
            {
                if (j != i)
                {
                    numerator = GaloisField256.Multiply(numerator, points[j].X);
                    denominator = GaloisField256.Multiply(denominator, (byte)(points[j].X ^ points[i].X));
                }
            }

            basis[i] = GaloisField256.Multiply(numerator, GaloisField256.Inverse(denominator));
        }

        var secret = new byte[length];
        for (var b = 0; b < length; b++)
        {
            byte value = 0;
            for (var i = 0; i < points.Count; i++)
            {
                value ^= GaloisField256.Multiply(basis[i], points[i].Y[b]);
            }

            secret[b] = value;
        }

        return secret;
    }
}
