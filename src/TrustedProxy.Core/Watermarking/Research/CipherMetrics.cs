namespace TrustedProxy.Watermarking.Research;

/// <summary>
/// The statistics the chaos-cipher papers report. They detect a badly broken cipher; passing them
/// says nothing about resistance to cryptanalysis (see <c>docs/chaos-cipher.md</c>).
/// </summary>
/// <remarks>
/// NPCR and UACI follow Y. Wu, J. P. Noonan, S. Agaian, "NPCR and UACI randomness tests for image
/// encryption", Cyber Journals: JSAT, April 2011, 31–38, with F = 2^bits − 1 (bit-depth aware):
/// E[NPCR] = F/(F+1), E[UACI] = (F+2)/(3F+3), N*_α = (F − Φ⁻¹(1−α)·√(F/M))/(F+1),
/// U*±_α = E[UACI] ± Φ⁻¹(1−α/2)·σ, σ² = (F+2)(F²+2F+3)/(18(F+1)²·M·F), M samples.
/// </remarks>
internal static class CipherMetrics
{
    /// <summary>The significance level the papers use.</summary>
    public const double DefaultAlpha = 0.05;

    /// <summary>Adjacent pairs drawn per direction, as in most of the papers.</summary>
    public const int DefaultCorrelationPairs = 3000;

    /// <summary>Histogram bins for depths above 8 bits: the top 8 bits of each sample.</summary>
    public const int WideHistogramBins = 256;

    /// <summary>Number of Pixel Change Rate: the share (percent) of positions where the two differ.</summary>
    public static double Npcr(ReadOnlySpan<int> first, ReadOnlySpan<int> second)
    {
        CheckLengths(first, second);
        var differing = 0;
        for (var i = 0; i < first.Length; i++)
        {
            if (first[i] != second[i])
            {
                differing++;
            }
        }

        return 100.0 * differing / first.Length;
    }

    /// <summary>Unified Average Changing Intensity: mean |a − b| / (2^bits − 1), percent; samples are unsigned.</summary>
    public static double Uaci(ReadOnlySpan<int> first, ReadOnlySpan<int> second, int bits)
    {
        CheckLengths(first, second);
        var sum = 0.0;
        for (var i = 0; i < first.Length; i++)
        {
            sum += Math.Abs((double)(uint)first[i] - (uint)second[i]);
        }

        return 100.0 * sum / first.Length / MaxValue(bits);
    }

    public static double ExpectedNpcr(int bits) => 100.0 * MaxValue(bits) / (MaxValue(bits) + 1);

    public static double ExpectedUaci(int bits)
    {
        var f = MaxValue(bits);
        return 100.0 * (f + 2) / ((3 * f) + 3);
    }

    public static double NpcrCriticalValue(int bits, int samples, double alpha = DefaultAlpha)
    {
        var f = MaxValue(bits);
        return 100.0 * (f - (InverseNormal(1 - alpha) * Math.Sqrt(f / samples))) / (f + 1);
    }

    public static (double Low, double High) UaciCriticalInterval(int bits, int samples, double alpha = DefaultAlpha)
    {
        var f = MaxValue(bits);
        var sigma = Math.Sqrt((f + 2) * ((f * f) + (2 * f) + 3) / (18 * (f + 1) * (f + 1) * samples * f));
        var half = 100.0 * InverseNormal(1 - (alpha / 2)) * sigma;
        var mean = ExpectedUaci(bits);
        return (mean - half, mean + half);
    }

    /// <summary>NPCR and UACI between two ciphertexts with the expectations and the critical values at <paramref name="alpha"/>.</summary>
    public static DifferentialResult Differential(ReadOnlySpan<int> first, ReadOnlySpan<int> second, int bits, double alpha = DefaultAlpha)
    {
        var (low, high) = UaciCriticalInterval(bits, first.Length, alpha);
        return new DifferentialResult(Npcr(first, second), Uaci(first, second, bits), ExpectedNpcr(bits), ExpectedUaci(bits),
            NpcrCriticalValue(bits, first.Length, alpha), low, high);
    }

    /// <summary>
    /// The differential test of the papers: encrypts <paramref name="plain"/> and a copy with
    /// sample <paramref name="index"/> changed by one, and compares the two ciphertexts.
    /// </summary>
    public static DifferentialResult OnePixelDifferential(ChaoticImageCipher cipher, ReadOnlySpan<int> plain, ChaosFrameShape shape, int index, double alpha = DefaultAlpha)
    {
        ArgumentNullException.ThrowIfNull(cipher);
        var changed = plain.ToArray();
        changed[index] = (int)(((uint)changed[index] + 1) & shape.Mask);
        var c1 = new int[plain.Length];
        var c2 = new int[plain.Length];
        cipher.Encrypt(plain, c1, shape);
        cipher.Encrypt(changed, c2, shape);
        return Differential(c1, c2, shape.BitsStored, alpha);
    }

    /// <summary>
    /// χ² of the histogram against the uniform distribution: 2^bits bins up to 8 bits, else 256 bins
    /// of the top 8 bits (a 16-bit histogram would need millions of samples for the test to hold).
    /// </summary>
    public static HistogramUniformity Histogram(ReadOnlySpan<int> samples, int bits, double alpha = DefaultAlpha)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 32);
        var bins = bits <= 8 ? 1 << bits : WideHistogramBins;
        var shift = bits <= 8 ? 0 : bits - 8;
        var counts = new long[bins];
        foreach (var value in samples)
        {
            counts[(int)((uint)value >> shift) & (bins - 1)]++;
        }

        var expected = (double)samples.Length / bins;
        var chi = 0.0;
        foreach (var count in counts)
        {
            chi += (count - expected) * (count - expected) / expected;
        }

        var df = bins - 1;
        return new HistogramUniformity(bins, chi, df, ChiSquareQuantile(df, 1 - alpha), ChiSquareUpperTail(chi, df));
    }

    /// <summary>
    /// Pearson correlation of <paramref name="pairs"/> random adjacent pairs per direction
    /// (right, down, down-right), each in a random channel plane.
    /// </summary>
    public static AdjacentCorrelation Correlation(ReadOnlySpan<int> samples, ChaosFrameShape shape, Random random, int pairs = DefaultCorrelationPairs)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(random);
        if (shape.Width < 2 || shape.Height < 2)
        {
            throw new ArgumentException("adjacent pairs need at least 2×2 pixels", nameof(shape));
        }

        return new AdjacentCorrelation(
            Pearson(samples, shape, random, pairs, 1, 0),
            Pearson(samples, shape, random, pairs, 0, 1),
            Pearson(samples, shape, random, pairs, 1, 1));
    }

    /// <summary>
    /// Flips bit <paramref name="bit"/> of <paramref name="key"/>; compares the two ciphertexts of
    /// <paramref name="plain"/>, and the plaintext with its ciphertext decrypted under the flipped key.
    /// </summary>
    public static KeySensitivityResult KeySensitivity(ReadOnlySpan<byte> key, int bit, ReadOnlySpan<int> plain, ChaosFrameShape shape, Random random,
        int rounds = ChaoticImageCipher.DefaultRounds, double alpha = DefaultAlpha)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bit);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(bit, key.Length * 8);
        var other = key.ToArray();
        other[bit / 8] ^= (byte)(1 << (bit % 8));
        var c1 = new int[plain.Length];
        var c2 = new int[plain.Length];
        var wrong = new int[plain.Length];
        using (var cipher = new ChaoticImageCipher(key, rounds))
        {
            cipher.Encrypt(plain, c1, shape);
        }

        using (var cipher = new ChaoticImageCipher(other, rounds))
        {
            cipher.Encrypt(plain, c2, shape);
            cipher.Decrypt(c1, wrong, shape);
        }

        System.Security.Cryptography.CryptographicOperations.ZeroMemory(other);
        return new KeySensitivityResult(bit, Differential(c1, c2, shape.BitsStored, alpha), Differential(plain, wrong, shape.BitsStored, alpha),
            Correlation(wrong, shape, random));
    }

    /// <summary>Φ⁻¹(p), P. J. Acklam's rational approximation (relative error below 1.2·10⁻⁹).</summary>
    public static double InverseNormal(double p)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(p, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(p, 1);
        ReadOnlySpan<double> a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        ReadOnlySpan<double> b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        ReadOnlySpan<double> c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        ReadOnlySpan<double> d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        if (p < low || p > 1 - low)
        {
            var q = Math.Sqrt(-2 * Math.Log(p < low ? p : 1 - p));
            var x = Horner(c, q) / ((Horner(d, q) * q) + 1);
            return p < low ? x : -x;
        }

        var s = p - 0.5;
        var r = s * s;
        return Horner(a, r) * s / ((Horner(b, r) * r) + 1);
    }

    /// <summary>1 − Φ(z), from the complementary error function (Numerical Recipes' erfcc, fractional error below 1.2·10⁻⁷).</summary>
    public static double NormalUpperTail(double z)
    {
        var x = Math.Abs(z) / Math.Sqrt(2);
        var t = 1 / (1 + (0.5 * x));
        ReadOnlySpan<double> coefficients = [0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223];
        var erfc = t * Math.Exp((-x * x) + Horner(coefficients, t));
        return z >= 0 ? 0.5 * erfc : 1 - (0.5 * erfc);
    }

    /// <summary>χ² quantile by the Wilson–Hilferty cube-root normal approximation (good to about 0.1 % for df ≥ 30).</summary>
    public static double ChiSquareQuantile(int df, double p)
    {
        var v = 2.0 / (9 * df);
        var cube = 1 - v + (InverseNormal(p) * Math.Sqrt(v));
        return df * cube * cube * cube;
    }

    /// <summary>P(χ²_df ≥ statistic) by the same approximation.</summary>
    public static double ChiSquareUpperTail(double statistic, int df)
    {
        var v = 2.0 / (9 * df);
        var z = (Math.Cbrt(statistic / df) - (1 - v)) / Math.Sqrt(v);
        return NormalUpperTail(z);
    }

    /// <summary>Evaluates c[0]·x^(n−1) + … + c[n−1].</summary>
    private static double Horner(ReadOnlySpan<double> coefficients, double x)
    {
        var sum = 0.0;
        foreach (var c in coefficients)
        {
            sum = (sum * x) + c;
        }

        return sum;
    }

    private static double MaxValue(int bits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 32);
        return Math.Pow(2, bits) - 1;
    }

    private static void CheckLengths(ReadOnlySpan<int> first, ReadOnlySpan<int> second)
    {
        if (first.Length != second.Length || first.Length == 0)
        {
            throw new ArgumentException($"the two images must hold the same, non-zero number of samples ({first.Length} and {second.Length})");
        }
    }

    private static double Pearson(ReadOnlySpan<int> samples, ChaosFrameShape shape, Random random, int pairs, int dx, int dy)
    {
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (var k = 0; k < pairs; k++)
        {
            var plane = random.Next(shape.SamplesPerPixel) * shape.PlaneLength;
            var x = random.Next(shape.Width - dx);
            var y = random.Next(shape.Height - dy);
            double a = (uint)samples[plane + (y * shape.Width) + x];
            double b = (uint)samples[plane + ((y + dy) * shape.Width) + x + dx];
            sx += a;
            sy += b;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }

        // Constant samples have no correlation: NaN, as in the definition.
        var covariance = (sxy / pairs) - (sx / pairs * (sy / pairs));
        var varianceX = (sxx / pairs) - (sx / pairs * (sx / pairs));
        var varianceY = (syy / pairs) - (sy / pairs * (sy / pairs));
        return covariance / Math.Sqrt(varianceX * varianceY);
    }
}
