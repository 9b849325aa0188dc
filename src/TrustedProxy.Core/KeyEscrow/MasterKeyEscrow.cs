using System.Security.Cryptography;
using TrustedProxy.Crypto;

namespace TrustedProxy.KeyEscrow;

/// <summary>
/// Escrow of the proxy's master key with custodians: <c>Split</c> deals k-of-n shares of it,
/// <see cref="Recover"/> takes k or more back and returns the key only once it matches the key's
/// own check value, the installation id every share carries. The running proxy never reads a share.
/// </summary>
internal static class MasterKeyEscrow
{
    public const int DefaultShares = 5;
    public const int DefaultThreshold = 3;

    /// <summary>HKDF info of the installation id: a public name of the master key, and its check value.</summary>
    public const string InstallationIdInfo = "TrustedProxy/installation-id/v1";

    /// <summary>128 bits: a wrong key matches by chance with probability 2^-128, and HKDF's output tells nothing of the key.</summary>
    public const int InstallationIdBytes = 16;

    public const int SplitIdBytes = 16;

    // Trying every k-subset to find the shares that do not fit is cheap for the handful of shares
    // custodians bring; past this many subsets the search is skipped and the error stays general.
    private const int MaxSubsetsTried = 10_000;

    /// <summary>
    /// The installation's public identifier, derived from the master key: a fresh machine holding
    /// only shares checks the key they rebuild against it, and tells one installation's shares from another's.
    /// </summary>
    public static string InstallationId(ProxyKeyRing keys)
    {
        var id = keys.Derive(InstallationIdInfo, InstallationIdBytes);
        return Convert.ToHexStringLower(id);
    }

    /// <summary>Every reason the parameters are not a usable split (empty when they are).</summary>
    public static IReadOnlyList<string> Validate(int threshold, int shares)
    {
        var errors = new List<string>();
        if (shares is < 2 or > ShamirSecretSharing.MaxShares)
        {
            errors.Add($"--shares must be from 2 to {ShamirSecretSharing.MaxShares}");
        }

        if (threshold < 2)
        {
            errors.Add("--threshold must be at least 2: with 1, every share would be the master key itself");
        }
        else if (threshold > shares)
        {
            errors.Add($"--threshold ({threshold}) must not exceed --shares ({shares})");
        }

        return errors;
    }

    public static IReadOnlyList<KeyShare> Split(ProxyKeyRing keys, int threshold, int shares) =>
        Split(keys, threshold, shares, RandomNumberGenerator.Fill);

    /// <summary>Deals <paramref name="shares"/> shares of a new split (a fresh random split id and fresh polynomials).</summary>
    public static IReadOnlyList<KeyShare> Split(ProxyKeyRing keys, int threshold, int shares, Action<Span<byte>> fillRandom)
    {
        if (Validate(threshold, shares) is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join("; ", errors));
        }

        var master = keys.ExportMasterKey();
        try
        {
            var installation = InstallationId(keys);
            var splitId = new byte[SplitIdBytes];
            fillRandom(splitId);
            var values = ShamirSecretSharing.Split(master, threshold, shares, fillRandom);
            var split = Convert.ToHexStringLower(splitId);
            return [.. values.Select((value, i) =>
                new KeyShare(installation, split, threshold, shares, (byte)(i + 1), value, KeyShareFile.FileName(split, i + 1, shares)))];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(master);
        }
    }

    /// <summary>
    /// Rebuilds the master key from shares of one split, refusing (one line naming the share) a
    /// share given twice, a share of another installation (or of one other than
    /// <paramref name="expectedInstallation"/>, when the caller knows which it wants), a share of
    /// another split, too few shares, and shares that do not rebuild the key their check value names.
    /// With more shares than the threshold, a share that does not fit the others is named in
    /// <see cref="RecoveredMasterKey.Inconsistent"/> and the key is still returned.
    /// </summary>
    public static RecoveredMasterKey Recover(IReadOnlyList<KeyShare> shares, string? expectedInstallation = null)
    {
        if (shares.Count == 0)
        {
            throw new KeyShareException("no shares given");
        }

        var first = shares[0];
        for (var i = 0; i < shares.Count; i++)
        {
            var share = shares[i];
            for (var j = 0; j < i; j++)
            {
                if (SamePath(share.Source, shares[j].Source))
                {
                    throw new KeyShareException($"'{share.Source}' is given twice");
                }

                if (share.SplitId == shares[j].SplitId && share.Index == shares[j].Index)
                {
                    throw new KeyShareException($"'{share.Source}' duplicates '{shares[j].Source}': both are share {share.Index} of split {share.SplitId}; {share.Threshold} different shares are needed");
                }
            }

            if (expectedInstallation is not null && share.InstallationId != expectedInstallation)
            {
                throw new KeyShareException($"'{share.Source}' is a share of another installation ({share.InstallationId}), not of this one ({expectedInstallation})");
            }

            if (share.InstallationId != first.InstallationId)
            {
                throw new KeyShareException($"'{share.Source}' is a share of another installation ({share.InstallationId}) than '{first.Source}' ({first.InstallationId})");
            }

            if (share.SplitId != first.SplitId)
            {
                throw new KeyShareException($"'{share.Source}' is of split {share.SplitId}, '{first.Source}' of split {first.SplitId}: shares of different splits do not combine; bring {first.Threshold} shares of one split");
            }

            if (share.Threshold != first.Threshold || share.ShareCount != first.ShareCount)
            {
                throw new KeyShareException($"'{share.Source}' says {share.Threshold} of {share.ShareCount}, '{first.Source}' {first.Threshold} of {first.ShareCount} for the same split: one of them was altered");
            }
        }

        if (shares.Count < first.Threshold)
        {
            throw new KeyShareException($"{Shares(shares.Count)} of split {first.SplitId} given, and it takes {first.Threshold}: {first.Threshold - shares.Count} more needed");
        }

        // The first k shares, then, should they not rebuild the key, every other k-subset: with
        // more shares than needed, the good ones outvote an altered one, and the altered one is named.
        foreach (var subset in Subsets(shares.Count, first.Threshold))
        {
            var key = Combine(shares, subset);
            if (Matches(key, first.InstallationId))
            {
                var inconsistent = new List<string>();
                for (var s = 0; s < shares.Count; s++)
                {
                    if (subset.Contains(s))
                    {
                        continue;
                    }

                    // Swap the candidate in for one member: a point on the same polynomials rebuilds the same key.
                    var swapped = subset.ToArray();
                    swapped[0] = s;
                    var again = Combine(shares, swapped);
                    if (!CryptographicOperations.FixedTimeEquals(again, key))
                    {
                        inconsistent.Add(shares[s].Source);
                    }

                    CryptographicOperations.ZeroMemory(again);
                }

                return new RecoveredMasterKey(key, first.InstallationId, first.SplitId, first.Threshold, first.ShareCount,
                    [.. subset.Select(i => shares[i].Source)], inconsistent);
            }

            CryptographicOperations.ZeroMemory(key);
        }

        throw new KeyShareException(shares.Count == first.Threshold
            ? $"the {Shares(shares.Count)} do not rebuild the master key of installation {first.InstallationId} (its check value does not match): one of them was altered after it was written; try another custodian's share"
            : $"no {first.Threshold} of the {Shares(shares.Count)} rebuild the master key of installation {first.InstallationId} (its check value does not match): several were altered after they were written");
    }

    private static byte[] Combine(IReadOnlyList<KeyShare> shares, IReadOnlyList<int> subset)
    {
        var points = subset.Select(i => (shares[i].Index, shares[i].Value.ToArray())).ToList();
        try
        {
            return ShamirSecretSharing.Combine(points);
        }
        finally
        {
            foreach (var (_, y) in points)
            {
                CryptographicOperations.ZeroMemory(y);
            }
        }
    }

    private static bool Matches(byte[] key, string installationId)
    {
        using var keys = ProxyKeyRing.FromBytes(key);
        return CryptographicOperations.FixedTimeEquals(
            Convert.FromHexString(InstallationId(keys)), Convert.FromHexString(installationId));
    }

    /// <summary>The k-subsets of 0..n-1 in lexicographic order, the first being 0..k-1; none past <see cref="MaxSubsetsTried"/>.</summary>
    private static IEnumerable<int[]> Subsets(int n, int k)
    {
        var indices = Enumerable.Range(0, k).ToArray();
        for (var tried = 0; tried < MaxSubsetsTried; tried++)
        {
            yield return [.. indices];
            var i = k - 1;
            while (i >= 0 && indices[i] == n - k + i)
            {
                i--;
            }

            if (i < 0)
            {
                yield break;
            }

            indices[i]++;
            for (var j = i + 1; j < k; j++)
            {
                indices[j] = indices[j - 1] + 1;
            }
        }
    }

    private static bool SamePath(string a, string b) =>
        a.Length > 0 && string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static string Shares(int count) => count == 1 ? "1 share" : $"{count} shares";
}
