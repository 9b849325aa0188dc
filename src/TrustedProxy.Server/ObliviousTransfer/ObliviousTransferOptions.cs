using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Server.ObliviousTransfer;

/// <summary>Limits of oblivious transfers to consumers. Section TrustedProxy:ObliviousTransfer.</summary>
public sealed record ObliviousTransferOptions
{
    /// <summary>Most records one transfer may offer (N).</summary>
    [Range(1, 65536)]
    public int MaxSetSize { get; init; } = 1024;

    /// <summary>Most plaintext bytes one transfer may carry (all N records together).</summary>
    [Range(1024, long.MaxValue)]
    public long MaxTransferBytes { get; init; } = 1L << 30;

    /// <summary>How long an offer waits for the consumer's choice.</summary>
    [Range(1, 3600)]
    public int OfferSeconds { get; init; } = 300;

    /// <summary>Most offers waiting at once (each holds its set and keys in memory).</summary>
    [Range(1, 1_000_000)]
    public int MaxOpenOffers { get; init; } = 1000;
}
