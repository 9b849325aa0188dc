using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Policy;

namespace TrustedProxy.Audit;

/// <summary>
/// Who caused an audit entry: a federation member (by certificate), the proxy itself (start-up,
/// checkpoints), or an operator at the command line (by login name).
/// </summary>
public sealed record AuditActor(string Kind, string? Organisation = null, string? Role = null, string? CertificateSerial = null, string? User = null)
{
    public const string MemberKind = "member";
    public const string ProxyKind = "proxy";
    public const string OperatorKind = "operator";

    public static AuditActor Proxy { get; } = new(ProxyKind);

    public static AuditActor Member(FederationIdentity identity) =>
        new(MemberKind, identity.Organisation, ProxyRoles.ToName(identity.Role), identity.CertificateSerial);

    public static AuditActor Operator(string user) => new(OperatorKind, User: user);
}

/// <summary>The actor and the request (its random identifier, as in the <c>Request-Id</c> header) an entry is appended under.</summary>
public sealed record AuditContext(AuditActor Actor, string? RequestId = null)
{
    public static AuditContext Proxy { get; } = new(AuditActor.Proxy);
}

/// <summary>Where the capabilities that append entries learn who is acting: the server reads the current request, the command line names the operator.</summary>
internal interface IAuditContextSource
{
    AuditContext Current { get; }
}

/// <summary>One actor for everything appended (the command line, tests, background work).</summary>
internal sealed class FixedAuditContext(AuditContext context) : IAuditContextSource
{
    public AuditContext Current { get; } = context;
}

/// <summary>One entry as read back from the log.</summary>
/// <param name="Sequence">Its position, from 0.</param>
/// <param name="Time">When it was appended (UTC, as stored).</param>
/// <param name="Kind">What happened (<see cref="AuditKinds"/>).</param>
/// <param name="Actor">Who.</param>
/// <param name="RequestId">Under which request, if any.</param>
/// <param name="Data">What, kind by kind; pseudonyms and handles, never a patient's identity.</param>
/// <param name="Previous">The previous entry's hash (hex).</param>
/// <param name="Hash">This entry's hash (hex).</param>
public sealed record AuditEntry(long Sequence, string Time, string Kind, AuditActor? Actor, string? RequestId, JsonObject Data, string Previous, string Hash);

/// <summary>
/// One entry per line (JSON lines). The entry's hash covers the exact bytes of its body, so that
/// verification never depends on re-serialising: the body is a JSON object whose last member is
/// <c>prev</c>, and the stored line is that object with <c>,"hash":"&lt;hex&gt;"</c> added before
/// its closing brace, then a newline.
/// </summary>
internal static class AuditLine
{
    private const string HashMember = ",\"hash\":\"";
    private static readonly byte[] HashMemberBytes = Encoding.ASCII.GetBytes(HashMember);

    /// <summary>Bytes of <c>,"hash":"</c>, 64 hex digits and <c>"}</c>.</summary>
    private static readonly int SuffixLength = HashMember.Length + (AuditHashes.Length * 2) + 2;

    /// <summary>Builds a line (with its newline) and returns the entry's hash.</summary>
    public static byte[] Write(long sequence, string time, string kind, AuditContext context, JsonObject data, string previousHex, out byte[] hash)
    {
        using var body = new MemoryStream();
        using (var writer = new Utf8JsonWriter(body))
        {
            writer.WriteStartObject();
            writer.WriteNumber("seq", sequence);
            writer.WriteString("time", time);
            writer.WriteString("kind", kind);
            writer.WritePropertyName("actor");
            WriteActor(writer, context.Actor);
            if (context.RequestId is not null)
            {
                writer.WriteString("request", context.RequestId);
            }

            writer.WritePropertyName("data");
            data.WriteTo(writer);
            writer.WriteString("prev", previousHex);
            writer.WriteEndObject();
        }

        var bodyBytes = body.ToArray();
        hash = AuditHashes.Entry(bodyBytes);
        var line = new byte[bodyBytes.Length - 1 + SuffixLength + 1];
        bodyBytes.AsSpan(0, bodyBytes.Length - 1).CopyTo(line);
        var at = bodyBytes.Length - 1;
        HashMemberBytes.CopyTo(line, at);
        at += HashMemberBytes.Length;
        Encoding.ASCII.GetBytes(AuditHashes.Hex(hash)).CopyTo(line, at);
        at += AuditHashes.Length * 2;
        line[at++] = (byte)'"';
        line[at++] = (byte)'}';
        line[at] = (byte)'\n';
        return line;
    }

    /// <summary>
    /// Parses one line (without its newline). Returns the entry and the hash recomputed over its
    /// body; a line that is not an entry at all throws <see cref="FormatException"/>.
    /// </summary>
    public static (AuditEntry Entry, string ComputedHash) Parse(ReadOnlySpan<byte> line)
    {
        if (line.Length < SuffixLength + 2 || line[^1] != (byte)'}' || line[^2] != (byte)'"' ||
            !line.Slice(line.Length - SuffixLength, HashMemberBytes.Length).SequenceEqual(HashMemberBytes))
        {
            throw new FormatException("it does not end with its hash");
        }

        var storedHash = Encoding.ASCII.GetString(line.Slice(line.Length - SuffixLength + HashMemberBytes.Length, AuditHashes.Length * 2));
        var body = new byte[line.Length - SuffixLength + 1];
        line[..(line.Length - SuffixLength)].CopyTo(body);
        body[^1] = (byte)'}';

        JsonObject json;
        try
        {
            json = JsonNode.Parse(body) as JsonObject ?? throw new FormatException("it is not a JSON object");
        }
        catch (JsonException)
        {
            throw new FormatException("it is not well-formed JSON");
        }

        try
        {
            var entry = new AuditEntry(
                Number(json, "seq"),
                Text(json, "time"),
                Text(json, "kind"),
                json["actor"] is JsonObject actor ? ReadActor(actor) : null,
                json["request"]?.GetValue<string>(),
                json["data"] as JsonObject ?? throw new FormatException("it has no data object"),
                Text(json, "prev"),
                storedHash);
            return (entry, AuditHashes.Hex(AuditHashes.Entry(body)));
        }
        catch (InvalidOperationException)
        {
            throw new FormatException("a field has the wrong type");
        }
    }

    private static void WriteActor(Utf8JsonWriter writer, AuditActor actor)
    {
        writer.WriteStartObject();
        writer.WriteString("kind", actor.Kind);
        WriteIfPresent(writer, "organisation", actor.Organisation);
        WriteIfPresent(writer, "role", actor.Role);
        WriteIfPresent(writer, "serial", actor.CertificateSerial);
        WriteIfPresent(writer, "user", actor.User);
        writer.WriteEndObject();
    }

    private static void WriteIfPresent(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }

    private static AuditActor ReadActor(JsonObject actor) => new(
        actor["kind"]?.GetValue<string>() ?? throw new FormatException("its actor has no kind"),
        actor["organisation"]?.GetValue<string>(),
        actor["role"]?.GetValue<string>(),
        actor["serial"]?.GetValue<string>(),
        actor["user"]?.GetValue<string>());

    private static long Number(JsonObject json, string name) =>
        json[name]?.GetValue<long>() ?? throw new FormatException($"it has no {name}");

    private static string Text(JsonObject json, string name) =>
        json[name]?.GetValue<string>() ?? throw new FormatException($"it has no {name}");
}
