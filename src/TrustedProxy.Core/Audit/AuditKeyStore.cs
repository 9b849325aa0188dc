using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TrustedProxy.Crypto;
using TrustedProxy.IO;

namespace TrustedProxy.Audit;

/// <summary>
/// The audit log's own keys (docs/key-hierarchy.md, "Audit signing keys"), in
/// <c>&lt;data&gt;/audit/audit-keys.json</c>: every key the log's checkpoints were ever signed with,
/// in order (public halves, kept so that old checkpoints keep verifying), the current key's private
/// half wrapped (AES-256-GCM under a key derived from the master key), and during a handover the next
/// key's. A retired key's private half is removed from the file when the handover completes.
/// <para>
/// The private key is generated at random, not derived: the master key unwraps it where the file
/// is, but without the file (a copy of the master key alone, an escrow share set) it cannot be had,
/// and once rotated away it is gone for everyone. That, and the witness, is what stops someone with
/// the master key re-signing history.
/// </para>
/// Only the audit log's writer changes the file, under the log's append lock.
/// </summary>
internal sealed class AuditKeyStore : IDisposable
{
    public const string FileName = "audit-keys.json";
    public const string FormatName = "TrustedProxy audit keys v1";

    /// <summary>HKDF info of the key that wraps the audit private keys (never the audit key itself).</summary>
    public const string WrapInfo = "TrustedProxy/audit-key-wrap/v1";

    public const string OriginGenerated = "generated";
    public const string OriginDerived = "derived-from-master-key";

    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] AssociatedPrefix = [.. "TrustedProxy/audit-key/v1"u8, 0x00];
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly string _path;
    private readonly TimeProvider _time;

    // Derived once, so that the store outlives the key ring it was opened with (the command line
    // disposes its ring once the log is open); wiped at Dispose.
    private readonly byte[] _wrapKey;
    private readonly AuditSigningKey _legacy;
    private Document _document;

    private AuditKeyStore(string path, ProxyKeyRing ring, TimeProvider time, Document document)
    {
        _path = path;
        _time = time;
        _wrapKey = ring.Derive(WrapInfo);
        _legacy = AuditSigningKey.DeriveLegacy(ring);
        _document = document;
        Load();
    }

    /// <summary>Whether the current key is the one derived from the master key (a log begun before issue 16, not yet handed over).</summary>
    public bool CurrentIsDerived => _document.Keys.First(k => k.KeyId == _document.Current).Origin == OriginDerived;

    /// <summary>The key new checkpoints are signed with.</summary>
    public AuditSigningKey Current { get; private set; } = null!;

    /// <summary>The key a handover in progress hands over to (written to the file before the log's entry), else null.</summary>
    public AuditSigningKey? Next { get; private set; }

    /// <summary>Every key the log has used, first to current (public halves).</summary>
    public IReadOnlyList<AuditPublicKey> Keys { get; private set; } = [];

    /// <summary>What the log's own verification starts from: its first key.</summary>
    public AuditKeyTrust Trust => AuditKeyTrust.Of(Keys[0]);

    public static string PathIn(AuditLogPaths paths) => Path.Combine(paths.Directory, FileName);

    /// <summary>
    /// Opens the store beside the log, creating it on first use: a fresh key for a new log; for a
    /// log begun before issue 16 (<paramref name="legacyLog"/>), the derived key it was signed with
    /// as the current key and a fresh key as the next, so that the writer's first act is to hand over.
    /// </summary>
    public static AuditKeyStore OpenOrCreate(AuditLogPaths paths, ProxyKeyRing ring, bool legacyLog, TimeProvider time)
    {
        var path = PathIn(paths);
        if (File.Exists(path))
        {
            return new AuditKeyStore(path, ring, time, Read(path));
        }

        var now = AuditHashes.Time(time.GetUtcNow());
        var keys = new List<StoredKey>();
        string current;
        string? next = null;
        if (legacyLog)
        {
            using var legacy = AuditSigningKey.DeriveLegacy(ring);
            keys.Add(new StoredKey(legacy.PublicKey.KeyId, legacy.PublicKey.SubjectPublicKeyInfoBase64, OriginDerived, now, null, null));
            current = legacy.PublicKey.KeyId;
        }
        else
        {
            current = string.Empty;
        }

        using var fresh = AuditSigningKey.Generate();
        var wrapKey = ring.Derive(WrapInfo);
        try
        {
            keys.Add(Stored(wrapKey, fresh, now));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(wrapKey);
        }

        if (legacyLog)
        {
            next = fresh.PublicKey.KeyId;
        }
        else
        {
            current = fresh.PublicKey.KeyId;
        }

        var document = new Document(FormatName, current, next, keys);
        Write(path, document);
        return new AuditKeyStore(path, ring, time, document);
    }

    /// <summary>The trust a local verification starts from: the store's first key, or (a log never opened since issue 16) the derived key.</summary>
    public static AuditKeyTrust LocalTrust(AuditLogPaths paths, ProxyKeyRing? ring)
    {
        var path = PathIn(paths);
        if (File.Exists(path))
        {
            var document = Read(path);
            return AuditKeyTrust.Of(AuditPublicKey.FromSubjectPublicKeyInfo(Convert.FromBase64String(document.Keys[0].PublicKey)));
        }

        if (ring is null)
        {
            throw new InvalidOperationException($"no '{FileName}' beside the log and no master key: pass the audit public key");
        }

        using var legacy = AuditSigningKey.DeriveLegacy(ring);
        return AuditKeyTrust.Of(legacy.PublicKey);
    }

    /// <summary>The public keys in the store, first to current (readable without the master key).</summary>
    public static IReadOnlyList<AuditPublicKey> PublicKeys(AuditLogPaths paths) =>
        [.. Read(PathIn(paths)).Keys.Select(k => AuditPublicKey.FromSubjectPublicKeyInfo(Convert.FromBase64String(k.PublicKey)))];

    /// <summary>Generates the next key and makes it durable before anything in the log names it; a handover already begun is kept.</summary>
    public void BeginHandover()
    {
        if (Next is not null)
        {
            return;
        }

        using var fresh = AuditSigningKey.Generate();
        var document = _document with
        {
            Next = fresh.PublicKey.KeyId,
            Keys = [.. _document.Keys, Stored(_wrapKey, fresh, AuditHashes.Time(_time.GetUtcNow()))],
        };
        Write(_path, document);
        Replace(document);
    }

    /// <summary>After the log's handover entry is durable: the next key becomes current, the old one's private half leaves the file.</summary>
    public void CompleteHandover()
    {
        if (Next is not { } next)
        {
            return;
        }

        var now = AuditHashes.Time(_time.GetUtcNow());
        var retired = _document.Current;
        var document = _document with
        {
            Current = next.PublicKey.KeyId,
            Next = null,
            Keys = [.. _document.Keys.Select(k => k.KeyId == retired ? k with { Retired = now, WrappedPrivateKey = null } : k)],
        };
        Write(_path, document);
        Replace(document);
    }

    /// <summary>Reads the file again (another process, the command line, may have handed over).</summary>
    public void Reload() => Replace(Read(_path));

    public void Dispose()
    {
        Current.Dispose();
        Next?.Dispose();
        _legacy.Dispose();
        CryptographicOperations.ZeroMemory(_wrapKey);
    }

    private void Replace(Document document)
    {
        var (current, next) = (Current, Next);
        _document = document;
        Load();
        current.Dispose();
        next?.Dispose();
    }

    private void Load()
    {
        Keys = [.. _document.Keys.Select(k => AuditPublicKey.FromSubjectPublicKeyInfo(Convert.FromBase64String(k.PublicKey)))];
        Current = Private(_document.Current);
        Next = _document.Next is { } next ? Private(next) : null;
    }

    private AuditSigningKey Private(string keyId)
    {
        var stored = _document.Keys.FirstOrDefault(k => k.KeyId == keyId)
            ?? throw new FormatException($"'{_path}' names key {keyId} but does not hold it");
        if (stored.Origin == OriginDerived)
        {
            if (stored.KeyId != _legacy.PublicKey.KeyId)
            {
                throw new FormatException($"'{_path}': the derived key {keyId} is not this master key's");
            }

            // A second instance, so that Current and Next can be disposed alike.
            var copy = _legacy.ExportPkcs8();
            try
            {
                return AuditSigningKey.FromPkcs8(copy);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(copy);
            }
        }

        var blob = Convert.FromBase64String(stored.WrappedPrivateKey ?? throw new FormatException($"'{_path}' holds no private key for {keyId}"));
        if (blob.Length <= NonceBytes + TagBytes)
        {
            throw new FormatException($"'{_path}': the wrapped key {keyId} is too short");
        }

        var pkcs8 = new byte[blob.Length - NonceBytes - TagBytes];
        try
        {
            using var aes = new AesGcm(_wrapKey, TagBytes);
            aes.Decrypt(blob.AsSpan(0, NonceBytes), blob.AsSpan(NonceBytes, pkcs8.Length), blob.AsSpan(NonceBytes + pkcs8.Length), pkcs8, Associated(keyId));
            var key = AuditSigningKey.FromPkcs8(pkcs8);
            if (key.PublicKey.KeyId != keyId)
            {
                key.Dispose();
                throw new FormatException($"'{_path}': the private key stored as {keyId} is another key");
            }

            return key;
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new FormatException($"'{_path}': the audit key {keyId} does not unwrap with this master key (another installation's, or altered)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private static StoredKey Stored(byte[] wrapKey, AuditSigningKey key, string now)
    {
        var pkcs8 = key.ExportPkcs8();
        try
        {
            var blob = new byte[NonceBytes + pkcs8.Length + TagBytes];
            RandomNumberGenerator.Fill(blob.AsSpan(0, NonceBytes));
            using var aes = new AesGcm(wrapKey, TagBytes);
            aes.Encrypt(blob.AsSpan(0, NonceBytes), pkcs8, blob.AsSpan(NonceBytes, pkcs8.Length), blob.AsSpan(NonceBytes + pkcs8.Length), Associated(key.PublicKey.KeyId));
            return new StoredKey(key.PublicKey.KeyId, key.PublicKey.SubjectPublicKeyInfoBase64, OriginGenerated, now, null, Convert.ToBase64String(blob));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    // The key id is bound to the ciphertext: a wrapped key moved to another entry of the file does not open.
    private static byte[] Associated(string keyId) => [.. AssociatedPrefix, .. Encoding.ASCII.GetBytes(keyId)];

    private static Document Read(string path)
    {
        Document? document;
        try
        {
            document = JsonSerializer.Deserialize<Document>(SecretFile.ReadText(path), Json);
        }
        catch (JsonException)
        {
            throw new FormatException($"'{path}' is not an audit key store (not JSON)");
        }

        if (document is not { Format: FormatName, Current.Length: > 0, Keys.Count: > 0 })
        {
            throw new FormatException($"'{path}' is not a '{FormatName}' with a current key and a list of keys");
        }

        return document;
    }

    private static void Write(string path, Document document)
    {
        SecretFile.WriteText(path, JsonSerializer.Serialize(document, Json) + "\n");
        Durability.SyncDirectory(Path.GetDirectoryName(path)!);
    }

    private sealed record Document(string Format, string Current, string? Next, List<StoredKey> Keys);

    /// <param name="KeyId">First 16 bytes of SHA-256 over the SubjectPublicKeyInfo, hex.</param>
    /// <param name="PublicKey">SubjectPublicKeyInfo, base64.</param>
    /// <param name="Origin"><see cref="OriginGenerated"/> or <see cref="OriginDerived"/>.</param>
    /// <param name="Created">When it entered the store (UTC).</param>
    /// <param name="Retired">When the log handed over from it, else null.</param>
    /// <param name="WrappedPrivateKey">nonce (12) ‖ AES-256-GCM(PKCS#8) ‖ tag (16), base64; null once retired, and for the derived key.</param>
    private sealed record StoredKey(string KeyId, string PublicKey, string Origin, string Created, string? Retired, string? WrappedPrivateKey);
}
