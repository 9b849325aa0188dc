namespace TrustedProxy.Watermarking.Research;

/// <summary>NPCR and UACI (percent) between two ciphertexts, with Wu, Noonan and Agaian's expectations and critical values.</summary>
/// <param name="Npcr">Share of differing samples, percent.</param>
/// <param name="Uaci">Mean absolute difference over 2^bits − 1, percent.</param>
/// <param name="ExpectedNpcr">E[NPCR] for two independent uniform images.</param>
/// <param name="ExpectedUaci">E[UACI] for two independent uniform images.</param>
/// <param name="NpcrCritical">N*_α: a random-like cipher's NPCR falls below it with probability α.</param>
/// <param name="UaciLow">U*−_α: lower end of the two-sided acceptance interval of UACI.</param>
/// <param name="UaciHigh">U*+_α: upper end.</param>
internal sealed record DifferentialResult(double Npcr, double Uaci, double ExpectedNpcr, double ExpectedUaci, double NpcrCritical, double UaciLow, double UaciHigh)
{
    public bool NpcrPasses => Npcr >= NpcrCritical;

    public bool UaciPasses => Uaci >= UaciLow && Uaci <= UaciHigh;
}

/// <summary>Pearson correlation of adjacent samples in three directions.</summary>
internal sealed record AdjacentCorrelation(double Horizontal, double Vertical, double Diagonal)
{
    public double MaxAbsolute => Math.Max(Math.Abs(Horizontal), Math.Max(Math.Abs(Vertical), Math.Abs(Diagonal)));
}

/// <summary>χ² goodness of fit of a histogram to the uniform distribution.</summary>
/// <param name="Bins">2^bits, or 256 (top 8 bits) above 8 bits.</param>
/// <param name="ChiSquare">Σ (observed − expected)² / expected.</param>
/// <param name="DegreesOfFreedom">Bins − 1.</param>
/// <param name="CriticalValue">χ²_{1−α}(df) (Wilson–Hilferty approximation).</param>
/// <param name="PValue">Upper-tail probability of the statistic (Wilson–Hilferty approximation).</param>
internal sealed record HistogramUniformity(int Bins, double ChiSquare, int DegreesOfFreedom, double CriticalValue, double PValue)
{
    public bool IsUniform => ChiSquare <= CriticalValue;
}

/// <summary>What a one-bit change of the key does.</summary>
/// <param name="FlippedBit">Bit index in the 256-bit key (0 = least significant bit of byte 0).</param>
/// <param name="Ciphertexts">NPCR/UACI between the ciphertexts of one plaintext under the two keys.</param>
/// <param name="WrongKeyDecryption">NPCR/UACI between the plaintext and the ciphertext decrypted under the other key.</param>
/// <param name="WrongKeyCorrelation">Adjacent correlation of that wrong decryption (noise: near 0).</param>
internal sealed record KeySensitivityResult(int FlippedBit, DifferentialResult Ciphertexts, DifferentialResult WrongKeyDecryption, AdjacentCorrelation WrongKeyCorrelation);
