using System.Text;
using TrustedProxy.IO;
using TrustedProxy.Storage;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// Deliberately broken proxies for the wire test's controls: each wraps the real store and treats
/// real and cover objects differently on one observable, so that the classifier for that observable
/// must find them (or it proves nothing). They learn an object's kind from <see cref="WireTruth"/>,
/// as a careless proxy knows its own blocks.
/// </summary>
public abstract class KindAwareStore(IObjectStore inner, WireTruth truth) : IObjectStore
{
    public string Name => inner.Name;

    protected IObjectStore Inner => inner;

    protected bool IsReal(ObjectName name) => truth.KindOf(name.ToString()) == "Real";

    public virtual Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) =>
        inner.PutIfAbsentAsync(name, content, length, cancellationToken);

    public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => inner.OpenReadAsync(name, cancellationToken);

    public virtual Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

    public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

    protected static async Task<byte[]> ReadAllAsync(Stream content, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}

/// <summary>
/// Control 1: plaintext in real objects — a magic, version and segment size ("TPX\x01", 16 bytes) at
/// the start, as an unmasked envelope header would be, and the last 512 bytes zero, as padding
/// that was not drawn at random would be.
/// </summary>
public sealed class PlaintextOnReal(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public static readonly byte[] Magic = [.. Encoding.ASCII.GetBytes("TPX"), 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];

    public const int ZeroTail = 512;

    public override async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        if (!IsReal(name))
        {
            return await Inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        var bytes = await ReadAllAsync(content, cancellationToken);
        bytes.AsSpan(Math.Max(0, bytes.Length - ZeroTail)).Clear();
        Magic.AsSpan(0, Math.Min(Magic.Length, bytes.Length)).CopyTo(bytes);
        return await Inner.PutIfAbsentAsync(name, new MemoryStream(bytes), length, cancellationToken);
    }
}

/// <summary>
/// Control 2: cover objects whose bytes are drawn afresh on every read pass (a <see cref="RandomBytesStream"/>):
/// the SDK hashes one pass for the signature and sends another, so the front sees a body that is not the one signed.
/// </summary>
public sealed class RerandomisedDummies(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public override async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        if (IsReal(name))
        {
            return await Inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        await using var fresh = new RandomBytesStream(length);
        return await Inner.PutIfAbsentAsync(name, fresh, length, cancellationToken);
    }
}

/// <summary>Control 3: an existence check (HEAD) before real writes only.</summary>
public sealed class HeadBeforeRealOnly(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public override async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        if (IsReal(name) && await Inner.ExistsAsync(name, cancellationToken))
        {
            return PutResult.AlreadyExists;
        }

        return await Inner.PutIfAbsentAsync(name, content, length, cancellationToken);
    }
}

/// <summary>Control for sizes: real objects carry 16 bytes more (an unpadded tag or length field).</summary>
public sealed class LongerReal(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public override async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
    {
        if (!IsReal(name))
        {
            return await Inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        var bytes = await ReadAllAsync(content, cancellationToken);
        return await Inner.PutIfAbsentAsync(name, new MemoryStream([.. bytes, .. new byte[16]]), length + 16, cancellationToken);
    }
}

/// <summary>Control 4 (survival): real objects are never deleted, whatever the engine asks; cover still expires.</summary>
public sealed class RealNeverDeleted(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public override Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) =>
        IsReal(name) ? Task.FromResult(true) : Inner.DeleteAsync(name, cancellationToken);
}

/// <summary>
/// Control for headers: real writes go through a second S3 client that adds one header of its own
/// (as a different SDK configuration, a checksum option or a metadata field for one kind would).
/// </summary>
public sealed class ExtraHeaderOnReal(IObjectStore inner, IObjectStore realPath, WireTruth truth) : KindAwareStore(inner, truth)
{
    public const string Header = "x-amz-meta-tpx-path";

    public override Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) =>
        IsReal(name) ? realPath.PutIfAbsentAsync(name, content, length, cancellationToken) : Inner.PutIfAbsentAsync(name, content, length, cancellationToken);
}

/// <summary>Not a leak: reads each body once into memory, so that every read pass of the SDK sees the same bytes (see <see cref="WireControl.StableBodies"/>).</summary>
public sealed class StableBodies(IObjectStore inner, WireTruth truth) : KindAwareStore(inner, truth)
{
    public override async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) =>
        await Inner.PutIfAbsentAsync(name, new MemoryStream(await ReadAllAsync(content, cancellationToken)), length, cancellationToken);
}

/// <summary>
/// Read-side controls: a proxy that reads a group differently when it serves a request — an
/// existence check (HEAD) before every member of a wanted group, and/or the wanted member itself
/// through a second client that adds a header. <paramref name="inWantedGroup"/> and
/// <paramref name="isWanted"/> are the proxy's own knowledge of what it is fetching.
/// </summary>
public sealed class WantedReadLeak(IObjectStore inner, IObjectStore realPath, Func<ObjectName, bool> inWantedGroup, Func<ObjectName, bool> isWanted, bool head, bool header) : IObjectStore
{
    public string Name => inner.Name;

    public async Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        if (head && inWantedGroup(name))
        {
            await inner.ExistsAsync(name, cancellationToken);
        }

        return await (header && isWanted(name) ? realPath : inner).OpenReadAsync(name, cancellationToken);
    }

    public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken) => inner.PutIfAbsentAsync(name, content, length, cancellationToken);

    public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

    public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

    public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
}
