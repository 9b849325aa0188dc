using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Export;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.Tests.Export;

/// <summary>One federation (a real CA, its proxy's server certificate, two members) shared by the bundle tests.</summary>
public sealed class ExportFederation : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly TemporaryDirectory _otherDirectory = new();

    public ExportFederation()
    {
        var ca = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(_directory.Path), "Export Test Root", passphrase: null, TimeProvider.System);
        Ca = ca.Certificate;
        Server = ca.IssueServer(["localhost"], TimeSpan.FromDays(30)).Certificate;
        Partner = ca.IssueClient("Research Partner", ProxyRole.Consumer, TimeSpan.FromDays(30)).Certificate;
        Stranger = ca.IssueClient("Someone Else", ProxyRole.Consumer, TimeSpan.FromDays(30)).Certificate;
        var other = ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(_otherDirectory.Path), "Another Federation", passphrase: null, TimeProvider.System);
        ForeignServer = other.IssueServer(["localhost"], TimeSpan.FromDays(30)).Certificate;
    }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Partner { get; }

    public X509Certificate2 Stranger { get; }

    public X509Certificate2 ForeignServer { get; }

    /// <summary>A member's private key as the recipient uses it (the ECDSA key of its certificate, as ECDH).</summary>
    public static ECDiffieHellman PrivateKey(X509Certificate2 member)
    {
        using var ecdsa = member.GetECDsaPrivateKey()!;
        var key = ECDiffieHellman.Create();
        key.ImportPkcs8PrivateKey(ecdsa.ExportPkcs8PrivateKey(), out _);
        return key;
    }

    public static X509Certificate2 PublicOnly(X509Certificate2 certificate) => X509CertificateLoader.LoadCertificate(certificate.RawData);

    public void Dispose()
    {
        _directory.Dispose();
        _otherDirectory.Dispose();
    }
}

public sealed class ExportBundleTests(ExportFederation federation) : IClassFixture<ExportFederation>, IDisposable
{
    private static readonly ExportOptions Small = new() { SegmentSize = ExportFormat.MinSegmentSize };

    private readonly TemporaryDirectory _work = new();

    private static (string Handle, string View, byte[] Content)[] Records(params int[] sizes) =>
        [.. sizes.Select((size, i) => (RecordHandle.New(), i % 2 == 0 ? "original" : "deidentified:basic", RandomNumberGenerator.GetBytes(size)))];

    private static Task<byte[]> WriteAsync(X509Certificate2 recipientCertificate, X509Certificate2 signerCertificate, ExportOptions options, params (string Handle, string View, byte[] Content)[] records) =>
        WriteAsync(recipientCertificate, signerCertificate, options, 1000, records);

    private static async Task<byte[]> WriteAsync(X509Certificate2 recipientCertificate, X509Certificate2 signerCertificate, ExportOptions options, int piece, params (string Handle, string View, byte[] Content)[] records)
    {
        using var recipient = ExportRecipient.FromCertificate(ExportFederation.PublicOnly(recipientCertificate));
        using var signer = new ExportSigner(signerCertificate);
        using var output = new MemoryStream();
        using var writer = await ExportBundleWriter.StartAsync(output, recipient, signer, records.Length, options, DateTimeOffset.UtcNow, CancellationToken.None);
        foreach (var (handle, view, content) in records)
        {
            await using var record = await writer.BeginRecordAsync(handle, view, CancellationToken.None);

            // Written in pieces, uneven as a de-identifier's output arrives, or whole as a record held in memory.
            for (var offset = 0; offset < content.Length; offset += piece)
            {
                await record.WriteAsync(content.AsMemory(offset, Math.Min(piece, content.Length - offset)));
            }

            await record.CompleteAsync(CancellationToken.None);
        }

        await writer.CompleteAsync(CancellationToken.None);
        return output.ToArray();
    }

    private async Task<IReadOnlyList<OpenedRecord>> OpenAsync(byte[] bundle, X509Certificate2 recipient, string output, ExportOptions? limits = null, X509Certificate2? ca = null)
    {
        using var key = ExportFederation.PrivateKey(recipient);
        return await new ExportBundleReader(limits ?? new ExportOptions(), TimeProvider.System).OpenAsync(new MemoryStream(bundle), key, ca ?? federation.Ca, output, CancellationToken.None);
    }

    private void AssertNothingWritten(string output)
    {
        Assert.False(Path.Exists(output));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_work.Path));
    }

    [Fact]
    public async Task ABundle_OpensForItsRecipient_BitExact_WithTheHandlesAndViewsItCarries_InOwnerOnlyFiles()
    {
        // Empty, one byte short of a segment, exactly two segments, and several segments and a bit.
        var records = Records(0, ExportFormat.MinSegmentSize - 1, 2 * ExportFormat.MinSegmentSize, 5 * ExportFormat.MinSegmentSize + 123);
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, records);

        var opened = await OpenAsync(bundle, federation.Partner, _work.File("out"));

        Assert.Equal(records.Length, opened.Count);
        for (var i = 0; i < records.Length; i++)
        {
            Assert.Equal(records[i].Handle, opened[i].Handle);
            Assert.Equal(records[i].View, opened[i].View);
            Assert.Equal(records[i].Content.Length, opened[i].Length);
            Assert.Equal(records[i].Content, await File.ReadAllBytesAsync(opened[i].Path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(opened[i].Path));
        }

        Assert.Equal(["out"], Directory.EnumerateFileSystemEntries(_work.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task RecordsWrittenWhole_AreSealedStraightFromTheCallersBuffer_AndOpenBitExact()
    {
        var records = Records(3 * ExportFormat.MinSegmentSize, 3 * ExportFormat.MinSegmentSize + 7);
        var whole = await WriteAsync(federation.Partner, federation.Server, Small, int.MaxValue, records);

        var opened = await OpenAsync(whole, federation.Partner, _work.File("out"));

        Assert.Equal(records.Select(r => r.Content), opened.Select(r => File.ReadAllBytes(r.Path)));
    }

    [Fact]
    public async Task TheSameRecordsExportedTwice_AreSealedUnderFreshKeys_SoNoCiphertextRepeats()
    {
        var records = Records(3000);

        var first = await WriteAsync(federation.Partner, federation.Server, Small, records);
        var second = await WriteAsync(federation.Partner, federation.Server, Small, records);

        Assert.Equal(first.Length, second.Length);
        var tail = records[0].Content.Length + ExportFormat.TagLength;
        Assert.False(first.AsSpan(first.Length - 66 - tail, tail).SequenceEqual(second.AsSpan(second.Length - 66 - tail, tail)));
        Assert.Equal(-1, first.AsSpan().IndexOf(records[0].Content.AsSpan(0, 64)));
    }

    [Fact]
    public async Task EveryByteOfABundle_Altered_IsRefused_WithOneLine_AndNothingWritten()
    {
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(100, 0));
        var messages = new HashSet<string>();

        for (var i = 0; i < bundle.Length; i++)
        {
            var altered = (byte[])bundle.Clone();
            altered[i] ^= 0x01;
            var output = _work.File($"out-{i}");

            var error = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(altered, federation.Partner, output));

            Assert.DoesNotContain('\n', error.Message);
            AssertNothingWritten(output);
            messages.Add(error.Message.Split(':')[0]);
        }

        // The refusals name what failed, not one generic error: the magic, the version, the recipient, a segment, the signature …
        Assert.True(messages.Count >= 5, string.Join(" | ", messages));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(600)]
    [InlineData(-1)]
    [InlineData(-40)]
    public async Task ATruncatedBundle_OrOneWithBytesAppended_IsRefused_AndNothingWritten(int cut)
    {
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(5000));
        var output = _work.File("out");
        var altered = cut < 0 ? bundle[..(bundle.Length + cut)] : cut == 0 ? [.. bundle, 0] : bundle[..cut];

        var error = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(altered, federation.Partner, output));

        Assert.Matches("truncated|follow the bundle's signature", error.Message);
        AssertNothingWritten(output);
    }

    [Fact]
    public async Task ABundleForAnotherRecipient_IsRefusedAsSuch_AndNothingWritten()
    {
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(100));
        var output = _work.File("out");

        var error = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Stranger, output));

        Assert.Contains("for another recipient", error.Message);
        AssertNothingWritten(output);
    }

    [Fact]
    public async Task ABundleReaddressedToAnotherKey_DoesNotOpenWithThatKey_AndNothingWritten()
    {
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(100));
        using (var stranger = ExportFederation.PrivateKey(federation.Stranger))
        {
            // The recipient key id sits after magic, version, bundle id, time, segment size and count.
            ExportFormat.KeyId(stranger).CopyTo(bundle, 4 + 1 + 16 + 8 + 4 + 4);
        }

        var output = _work.File("out");

        var error = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Stranger, output));

        Assert.Contains("does not unwrap with this private key", error.Message);
        AssertNothingWritten(output);
    }

    [Fact]
    public async Task ABundleSignedByAMember_OrByAnotherFederationsProxy_IsRefused_AndNothingWritten()
    {
        var byMember = await WriteAsync(federation.Partner, federation.Stranger, Small, Records(100));
        var byForeignProxy = await WriteAsync(federation.Partner, federation.ForeignServer, Small, Records(100));

        var member = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(byMember, federation.Partner, _work.File("a")));
        var foreign = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(byForeignProxy, federation.Partner, _work.File("b")));

        Assert.Contains("not signed by this federation's proxy", member.Message);
        Assert.Contains("not signed by this federation's proxy", foreign.Message);
        AssertNothingWritten(_work.File("a"));
    }

    [Fact]
    public async Task TheReadersLimits_RefuseTooManyRecords_TooManyBytes_AndABigSignerCertificate_BeforeWritingAnything()
    {
        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(10, 20, 30));

        var records = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Partner, _work.File("a"), new ExportOptions { MaxRecords = 2 }));
        var bytes = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Partner, _work.File("b"), new ExportOptions { MaxBundleBytes = 59 }));
        var certificate = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Partner, _work.File("c"), new ExportOptions { MaxSignerCertificateBytes = 256 }));
        var record = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Partner, _work.File("e"), new ExportOptions { MaxRecordBytes = 29 }));

        Assert.Contains("3 records, more than the 2 allowed", records.Message);
        Assert.Contains("--max-bundle-bytes", bytes.Message);
        Assert.Contains("more than the 256 allowed", certificate.Message);
        Assert.Contains("--max-record-bytes", record.Message);
        AssertNothingWritten(_work.File("a"));
        Assert.Single(await OpenAsync(bundle, federation.Partner, _work.File("d"), new ExportOptions { MaxRecords = 3, MaxBundleBytes = 60, MaxRecordBytes = 30 }), r => r.Length == 30);
    }

    [Fact]
    public async Task TheWriter_RefusesMoreRecordsThanItsLimit_AndAnOutputThatExists_IsNotOverwritten()
    {
        var error = await Assert.ThrowsAsync<ExportBundleException>(() => WriteAsync(federation.Partner, federation.Server, Small with { MaxRecords = 2 }, Records(1, 1, 1)));
        Assert.Contains("at most 2 records", error.Message);

        var bundle = await WriteAsync(federation.Partner, federation.Server, Small, Records(10));
        Directory.CreateDirectory(_work.File("taken"));
        var exists = await Assert.ThrowsAsync<ExportBundleException>(() => OpenAsync(bundle, federation.Partner, _work.File("taken")));
        Assert.Contains("already exists", exists.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_work.File("taken")));
    }

    [Fact]
    public async Task TheWriter_StopsARecordOrABundleThatGrowsPastItsLimits_SoNoSignatureIsWritten()
    {
        var record = await Assert.ThrowsAsync<ExportBundleException>(() => WriteAsync(federation.Partner, federation.Server, Small with { MaxRecordBytes = 5000 }, int.MaxValue, Records(5001)));
        var bundle = await Assert.ThrowsAsync<ExportBundleException>(() => WriteAsync(federation.Partner, federation.Server, Small with { MaxBundleBytes = 9000 }, Records(4500, 4501)));

        Assert.Contains("MaxRecordBytes", record.Message);
        Assert.Contains("MaxBundleBytes", bundle.Message);
        Assert.Single(await OpenAsync(await WriteAsync(federation.Partner, federation.Server, Small with { MaxRecordBytes = 5000 }, Records(5000)), federation.Partner, _work.File("fits")));
    }

    [Fact]
    public void ARecipientWithoutAP256Key_IsRefused()
    {
        Assert.Throws<ExportBundleException>(() => ExportRecipient.FromCertificate(ExportFederation.PublicOnly(federation.Ca)));
    }

    public void Dispose() => _work.Dispose();
}
