using System.Buffers.Binary;
using System.Security.Cryptography;

namespace TrustedProxy.Backup;

/// <summary>What a page patch changes: pages written, the index's page count before and after.</summary>
internal sealed record IndexPatchSummary(int PageSize, long PagesBefore, long PagesAfter, long PagesChanged, long Bytes);

/// <summary>
/// An increment's index as the pages that changed, in the manner of Litestream's WAL frames: both
/// copies are taken with SQLite's online backup API, which copies the live file page for page, so a
/// page keeps its number from one copy to the next and a change of a few rows is a few pages, not the
/// whole index (<c>VACUUM INTO</c> renumbers pages and would make every copy differ everywhere).
/// The patch names the SHA-256 of the copy it was taken against and of the copy it makes, so a
/// recovery that would apply it to anything else stops with the reason instead of building a
/// corrupt index.
/// </summary>
/// <remarks>
/// Format: magic <c>TPPAGES1</c>, u32 page size, u64 pages before, u64 pages after, SHA-256 before,
/// SHA-256 after, u64 changed pages, then each changed page as u64 page number (0-based) and its bytes.
/// </remarks>
internal static class IndexPagePatch
{
    public const string EntryPath = "data/proxy.db.pages";
    private static readonly byte[] Magic = "TPPAGES1"u8.ToArray();
    private const int HeaderLength = 8 + 4 + 8 + 8 + 32 + 32 + 8;

    /// <summary>Writes to <paramref name="patch"/> the pages of <paramref name="current"/> that differ from <paramref name="reference"/>.</summary>
    public static IndexPatchSummary Create(string reference, string current, string patch)
    {
        var pageSize = PageSizeOf(current);
        if (PageSizeOf(reference) != pageSize)
        {
            throw new IOException("the index's page size changed since the reference copy: a page patch cannot carry that");
        }

        using var before = File.OpenRead(reference);
        using var after = File.OpenRead(current);
        if (before.Length % pageSize != 0 || after.Length % pageSize != 0)
        {
            throw new IOException("an index copy is not a whole number of pages");
        }

        var pagesBefore = before.Length / pageSize;
        var pagesAfter = after.Length / pageSize;
        using var output = new FileStream(patch, Crypto.SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None));
        output.Write(new byte[HeaderLength]);

        using var hashBefore = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var hashAfter = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var old = new byte[pageSize];
        var page = new byte[pageSize];
        var number = new byte[8];
        long changed = 0;
        for (long i = 0; i < Math.Max(pagesBefore, pagesAfter); i++)
        {
            var hasOld = i < pagesBefore;
            if (hasOld)
            {
                before.ReadExactly(old);
                hashBefore.AppendData(old);
            }

            if (i >= pagesAfter)
            {
                continue;
            }

            after.ReadExactly(page);
            hashAfter.AppendData(page);
            if (hasOld && old.AsSpan().SequenceEqual(page))
            {
                continue;
            }

            BinaryPrimitives.WriteInt64BigEndian(number, i);
            output.Write(number);
            output.Write(page);
            changed++;
        }

        var header = new byte[HeaderLength];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), pageSize);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(12), pagesBefore);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(20), pagesAfter);
        hashBefore.GetHashAndReset().CopyTo(header, 28);
        hashAfter.GetHashAndReset().CopyTo(header, 60);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(92), changed);
        output.Position = 0;
        output.Write(header);
        return new IndexPatchSummary(pageSize, pagesBefore, pagesAfter, changed, output.Length);
    }

    /// <summary>Applies <paramref name="patch"/> to the index at <paramref name="target"/>, checking it was taken against that index and makes the copy it names.</summary>
    public static IndexPatchSummary Apply(string patch, string target, string what)
    {
        using var input = File.OpenRead(patch);
        var header = new byte[HeaderLength];
        try
        {
            input.ReadExactly(header);
        }
        catch (EndOfStreamException)
        {
            throw new BackupIntegrityException($"{what}: the index page patch ends inside its header");
        }

        if (!header.AsSpan(0, 8).SequenceEqual(Magic))
        {
            throw new BackupIntegrityException($"{what}: the index page patch does not start with its magic");
        }

        var pageSize = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8));
        var pagesBefore = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(12));
        var pagesAfter = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(20));
        var changed = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(92));
        if (pageSize is < 512 or > 65536 || (pageSize & (pageSize - 1)) != 0 || pagesBefore < 0 || pagesAfter < 0 || changed < 0 || changed > pagesAfter
            || input.Length != HeaderLength + (changed * (8 + (long)pageSize)))
        {
            throw new BackupIntegrityException($"{what}: the index page patch's header does not describe its contents");
        }

        using (var index = new FileStream(target, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            if (index.Length != pagesBefore * pageSize || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(index), header.AsSpan(28, 32)))
            {
                throw new BackupIntegrityException($"{what}: the index page patch was taken against another index than the one restored before it");
            }

            var page = new byte[pageSize];
            var number = new byte[8];
            for (long i = 0; i < changed; i++)
            {
                input.ReadExactly(number);
                input.ReadExactly(page);
                var at = BinaryPrimitives.ReadInt64BigEndian(number);
                if (at < 0 || at >= pagesAfter)
                {
                    throw new BackupIntegrityException($"{what}: the index page patch writes page {at} of {pagesAfter}");
                }

                index.Position = at * pageSize;
                index.Write(page);
            }

            index.SetLength(pagesAfter * pageSize);
            index.Position = 0;
            if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(index), header.AsSpan(60, 32)))
            {
                throw new BackupIntegrityException($"{what}: the index after its page patch does not match the copy the patch was taken from");
            }
        }

        return new IndexPatchSummary(pageSize, pagesBefore, pagesAfter, changed, input.Length);
    }

    // The page size at offset 16 of SQLite's header, big-endian, 1 meaning 65536.
    private static int PageSizeOf(string database)
    {
        using var input = File.OpenRead(database);
        var header = new byte[100];
        input.ReadExactly(header);
        if (!header.AsSpan(0, 16).SequenceEqual("SQLite format 3\0"u8))
        {
            throw new IOException("an index copy is not an SQLite database");
        }

        var size = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(16));
        return size == 1 ? 65536 : size;
    }
}
