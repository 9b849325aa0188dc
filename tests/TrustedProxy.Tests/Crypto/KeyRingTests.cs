using TrustedProxy.Crypto;

namespace TrustedProxy.Tests.Crypto;

public sealed class KeyRingTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void FirstRun_CreatesAnOwnerOnlyMasterKey_AndLaterRunsReuseIt()
    {
        var path = _directory.File("keys/master.key");
        using var first = ProxyKeyRing.LoadOrCreate(path);
        using var second = ProxyKeyRing.LoadOrCreate(path);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(first.IdentifierPseudonymKey, second.IdentifierPseudonymKey);
    }

    [Fact]
    public void AMasterKeyReadableByOthers_IsRefused()
    {
        var path = _directory.File("master.key");
        ProxyKeyRing.LoadOrCreate(path).Dispose();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        Assert.Throws<InsecureSecretFileException>(() => ProxyKeyRing.LoadOrCreate(path));
    }

    [Fact]
    public void DerivedKeys_DifferByPurpose()
    {
        using var ring = ProxyKeyRing.FromBytes(new byte[32]);

        Assert.NotEqual(ring.Derive(ProxyKeyRing.KeyEncryptionInfo), ring.Derive(ProxyKeyRing.PatientPseudonymInfo));
    }

    [Fact]
    public void AWrappedDataKey_UnwrapsOnlyForItsOwnRecord()
    {
        using var ring = ProxyKeyRing.FromBytes(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using var key = DataKey.CreateRandom();

        var wrapped = ring.KeyEncryptionKeys.Wrap(key, "aaaaaaaaaaaaaaaaaaaaaaaaaa", 1);

        using (var back = ring.KeyEncryptionKeys.Unwrap(wrapped, "aaaaaaaaaaaaaaaaaaaaaaaaaa"))
        {
            Assert.Equal(key.Span.ToArray(), back.Span.ToArray());
        }

        Assert.Throws<EnvelopeIntegrityException>(() => ring.KeyEncryptionKeys.Unwrap(wrapped, "bbbbbbbbbbbbbbbbbbbbbbbbbb"));
        wrapped[20] ^= 1;
        Assert.Throws<EnvelopeIntegrityException>(() => ring.KeyEncryptionKeys.Unwrap(wrapped, "aaaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    [Fact]
    public void AnotherMasterKey_CannotUnwrap()
    {
        using var ring = ProxyKeyRing.FromBytes(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using var other = ProxyKeyRing.FromBytes(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using var key = DataKey.CreateRandom();

        var wrapped = ring.KeyEncryptionKeys.Wrap(key, "aaaaaaaaaaaaaaaaaaaaaaaaaa", 1);

        Assert.Throws<EnvelopeIntegrityException>(() => other.KeyEncryptionKeys.Unwrap(wrapped, "aaaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void KeysWrappedAndUnwrappedConcurrently_AllRoundTrip()
    {
        using var ring = ProxyKeyRing.FromBase64(Convert.ToBase64String(new byte[32]));
        var failures = 0;
        Parallel.For(0, 20_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var handle = i.ToString("D26", System.Globalization.CultureInfo.InvariantCulture);
            using var key = DataKey.CreateRandom();
            try
            {
                using var back = ring.KeyEncryptionKeys.Unwrap(ring.KeyEncryptionKeys.Wrap(key, handle, 1), handle);
                if (!back.Span.SequenceEqual(key.Span))
                {
                    Interlocked.Increment(ref failures);
                }
            }
            catch (EnvelopeIntegrityException)
            {
                Interlocked.Increment(ref failures);
            }
        });

        Assert.Equal(0, failures);
    }
}
