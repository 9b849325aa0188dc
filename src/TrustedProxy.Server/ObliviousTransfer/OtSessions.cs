using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.ObliviousTransfer;

/// <summary>An offer waiting for its choice: the sender's secret state, the set (each record with the obligations its decision gave), and who may answer it.</summary>
internal sealed record OtSession(OtSender Sender, IReadOnlyList<RecordEntry> Records, IReadOnlyList<byte[]> MessageKeys, string CertificateSerial, IReadOnlyList<PolicyObligations> Obligations, DateTimeOffset ExpiresAt, EgressMark Egress);

/// <summary>
/// Offers waiting for a choice, in memory only (an offer does not survive a restart; the consumer
/// asks again). Taking an offer removes it, so a choice is answered once.
/// </summary>
internal sealed class OtSessions(IOptions<ObliviousTransferOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, OtSession> _open = new(StringComparer.Ordinal);

    public bool TryAdd(string sessionId, OtSession session)
    {
        var now = time.GetUtcNow();
        foreach (var (id, old) in _open)
        {
            if (old.ExpiresAt <= now)
            {
                _open.TryRemove(id, out _);
            }
        }

        return _open.Count < options.Value.MaxOpenOffers && _open.TryAdd(sessionId, session);
    }

    /// <summary>The offer, if it exists, has not expired and belongs to this certificate; removed either way once found.</summary>
    public OtSession? Take(string sessionId, string certificateSerial)
    {
        if (!_open.TryGetValue(sessionId, out var session) || !string.Equals(session.CertificateSerial, certificateSerial, StringComparison.Ordinal))
        {
            return null;
        }

        if (!_open.TryRemove(new KeyValuePair<string, OtSession>(sessionId, session)))
        {
            return null;
        }

        return session.ExpiresAt > time.GetUtcNow() ? session : null;
    }

    public static List<byte[]> NewMessageKeys(int count) => Enumerable.Range(0, count).Select(_ => RandomNumberGenerator.GetBytes(OtProtocol.KeyBytes)).ToList();
}
