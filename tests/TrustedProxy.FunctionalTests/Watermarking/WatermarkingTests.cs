using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.FunctionalTests.DicomWeb;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Watermarking;

namespace TrustedProxy.FunctionalTests.Watermarking;

/// <summary>
/// Issue #6 in the server: records are sealed at ingest and restored bit-exact at retrieval, every
/// copy a consumer receives is fingerprinted (unless the policy allows it unmarked originals), and a
/// compliance officer traces a leaked copy, DICOM or PNG, to the consumer and request.
/// </summary>
public sealed class WatermarkingTests : ProxyTest
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static readonly string CtSmall = Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm");

    [Fact]
    public async Task ANativeImage_IsSealedInItsPixelsAtUpload_AndComesBackBitExact()
    {
        var original = await File.ReadAllBytesAsync(CtSmall);

        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);

        Assert.Equal("pixels", upload.Seal);
        Assert.Contains("sealed in the pixels", upload.SealDetail);
        Assert.Equal("pixels", (await Proxy.Client(ProxyRole.Consumer).GetAsync(upload.Handle)).Seal);

        // What is stored (and encrypted) is the sealed file: same length, other pixels, an authentic seal for this record.
        var stored = await StoredPlaintextAsync(upload.Handle);
        Assert.Equal(original.Length, stored.Length);
        Assert.False(original.AsSpan().SequenceEqual(stored));
        var storedFile = await DicomFile.ReadAsync(new MemoryStream(stored));
        Assert.Equal(SealStatus.Verified, Watermarks.Watermarker.VerifyAndRestore(storedFile, upload.Handle).Status);
        Assert.Equal(original, await storedFile.ToBytesAsync());

        // The local hospital may receive unmarked originals: the upload, bit for bit.
        var (copy, mark, _) = await FetchAsync(Proxy.Client(ProxyRole.Consumer), upload.Handle);
        Assert.Equal("unmarked", mark);
        Assert.Equal(original, copy);
    }

    [Fact]
    public async Task ACompressedImage_GetsADetachedSeal_TheResponseSaysSo_AndComesBackBitExact()
    {
        var compressed = DicomCorpus.WellFormedPart10.Where(f => f.IsCompressed).OrderBy(f => f.Name == "JPEG2000.dcm" ? 0 : 1).First();
        var original = await File.ReadAllBytesAsync(compressed.Path);

        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(compressed.Path);

        Assert.Equal("detached", upload.Seal);
        Assert.Contains(nameof(WatermarkRefusalReason.NotNative), upload.SealDetail);
        var entry = (await Index.FindAsync(upload.Handle))!;
        Assert.Equal(RecordSealKind.Detached, entry.Seal);
        Assert.NotNull(entry.DetachedSeal);
        Assert.Equal(original, await StoredPlaintextAsync(upload.Handle));

        var fingerprinted = Consumer("St Olav", out _);
        var (copy, mark, _) = await FetchAsync(fingerprinted, upload.Handle);
        Assert.Equal(original, copy);
        Assert.Equal("unmarked; reason=NotNative", mark);
    }

    [Fact]
    public async Task CopiesFetchedByThreeConsumers_AreEachTracedToTheirConsumerAndRequest_AlsoAsPng_AndRestoreToTheOriginal()
    {
        var original = await File.ReadAllBytesAsync(CtSmall);
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var compliance = Proxy.Client(ProxyRole.Compliance);

        var copies = new List<byte[]>();
        foreach (var organisation in new[] { "St Olav", "Haukeland", "Ullevaal" })
        {
            var consumer = Consumer(organisation, out var serial);
            var (copy, mark, requestId) = await FetchAsync(consumer, upload.Handle);
            Assert.Equal("fingerprinted", mark);
            Assert.NotEqual(original, copy);
            copies.Add(copy);

            var traced = await compliance.TraceAsync(new MemoryStream(copy), "application/dicom");
            AssertTracedTo(traced, organisation, serial, requestId);
            Assert.Equal($"GET /api/v1/records/{{handle}}/content", traced.RequestResource);

            var png = StoredValuePng.Encode(Image(await DicomFile.ReadAsync(new MemoryStream(copy))));
            AssertTracedTo(await compliance.TraceAsync(new MemoryStream(png), "image/png"), organisation, serial, requestId);

            var file = await DicomFile.ReadAsync(new MemoryStream(copy));
            Assert.True(Watermarks.Watermarker.RemoveFingerprint(file));
            Assert.Equal(original, await file.ToBytesAsync());
        }

        Assert.Equal(3, copies.Select(Convert.ToBase64String).Distinct().Count());
    }

    [Fact]
    public async Task ACopyTakenByWadoRs_IsFingerprinted_AndTraced()
    {
        var original = await File.ReadAllBytesAsync(CtSmall);
        var corpus = DicomCorpus.Get("CT_small.dcm");
        await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var consumer = Consumer("St Olav", out var serial);

        var (status, parts) = await DicomWebClient.RetrieveAsync(consumer, $"dicomweb/studies/{corpus.StudyInstanceUid}/series/{corpus.SeriesInstanceUid}/instances/{corpus.SopInstanceUid}");

        Assert.Equal(200, status);
        var copy = Assert.Single(parts);
        Assert.NotEqual(original, copy);
        var traced = await Proxy.Client(ProxyRole.Compliance).TraceAsync(new MemoryStream(copy), "application/dicom");
        AssertTracedTo(traced, "St Olav", serial, requestId: null);
        Assert.StartsWith("GET /dicomweb/studies/{study}/series/{series}/instances/{instance}", traced.RequestResource);
    }

    [Fact]
    public async Task EveryRecordOfAnObliviousTransfer_IsFingerprintedForTheConsumerAndTheSession()
    {
        var original = await File.ReadAllBytesAsync(CtSmall);
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await producer.UploadFileAsync(CtSmall);
        var second = await producer.UploadFileAsync(Path.Combine(DicomCorpus.TestFiles, "MR_small.dcm"));
        var consumer = Consumer("St Olav", out var serial);

        var taken = Assert.Single(await consumer.FetchObliviousAsync([first.Handle, second.Handle], [first.Handle]));

        var traced = await Proxy.Client(ProxyRole.Compliance).TraceAsync(new MemoryStream(taken), "application/dicom");
        AssertTracedTo(traced, "St Olav", serial, requestId: null);
        Assert.StartsWith($"offer {traced.RequestId}: 1 of 2 records", traced.RequestResource);
        var file = await DicomFile.ReadAsync(new MemoryStream(taken));
        Assert.True(Watermarks.Watermarker.RemoveFingerprint(file));
        Assert.Equal(original, await file.ToBytesAsync());
    }

    [Fact]
    public async Task ARecordSealedInItsPixels_WhoseMarkIsMissing_IsRefusedWithAnIntegrityProblem()
    {
        // A record stored unmarked (the PSNR floor refuses every image), then claimed by the index to be sealed in its pixels.
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { ["TrustedProxy:Watermarking:MinimumPsnr"] = "120" });
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        Assert.Equal("detached", upload.Seal);
        Assert.Contains(nameof(WatermarkRefusalReason.QualityFloor), upload.SealDetail);
        SetSealKind(upload.Handle, RecordSealKind.Pixels);

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, Stream.Null));

        Assert.Equal(502, error.Status);
        Assert.Equal("urn:trustedproxy:problem:integrity-failure", error.ProblemType);
        Assert.Contains("no seal is found", error.Detail);
    }

    [Fact]
    public async Task ADetachedSealOfAnotherRecord_IsRefusedWithAnIntegrityProblem()
    {
        var compressed = DicomCorpus.WellFormedPart10.Where(f => f.IsCompressed).Take(2).ToList();
        var first = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(compressed[0].Path);
        var second = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(compressed[1].Path);
        var otherSeal = (await Index.FindAsync(second.Handle))!.DetachedSeal!;
        using (var connection = Index.Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "UPDATE records SET detached_seal = $seal WHERE handle = $handle";
            command.Parameters.AddWithValue("$seal", otherSeal);
            command.Parameters.AddWithValue("$handle", first.Handle);
            Assert.Equal(1, command.ExecuteNonQuery());
        }

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).FetchAsync(first.Handle, Stream.Null));

        Assert.Equal(502, error.Status);
        Assert.Equal("urn:trustedproxy:problem:integrity-failure", error.ProblemType);
        Assert.Contains("detached seal does not verify", error.Detail);
    }

    [Fact]
    public async Task AnUploadLargerThanTheInMemoryLimit_GetsAWholeFileSeal_StreamsBackBitExact_AndATamperedIndexIsRefused()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Watermarking:MaxInMemoryBytes"] = "65536" });
        var original = new DicomFileBuilder().Image(256, 256, seed: 11).Build();
        Assert.True(original.Length > 65536);
        var producer = proxy.Client(ProxyRole.Producer);

        var upload = await producer.UploadAsync(new MemoryStream(original));
        var second = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Image(256, 256, seed: 12).Build()));

        Assert.Equal("whole-file", upload.Seal);
        Assert.Contains("MaxInMemoryBytes", upload.SealDetail);
        using (var copy = new MemoryStream())
        {
            await proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, copy);
            Assert.Equal(original, copy.ToArray());
        }

        // The index says another hospital uploaded it: the seal names the real origin.
        var index = proxy.Services.GetRequiredService<RecordIndex>();
        Execute(index, "UPDATE records SET origin_organisation = 'Another Hospital' WHERE handle = $handle", ("$handle", upload.Handle));
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, Stream.Null));
        Assert.Equal(502, error.Status);
        Assert.Equal("urn:trustedproxy:problem:integrity-failure", error.ProblemType);
        Assert.Contains("another origin organisation", error.Detail);

        // The other record's seal does not pass for this one.
        var otherSeal = (await index.FindAsync(second.Handle))!.DetachedSeal!;
        Execute(index, "UPDATE records SET detached_seal = $seal WHERE handle = $handle", ("$seal", otherSeal), ("$handle", upload.Handle));
        error = await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, Stream.Null));
        Assert.Contains("whole-file seal does not verify", error.Detail);
    }

    [Fact]
    public async Task TheRetrievalVerifier_RefusesASealedFileWithOnePixelChanged_AndRestoresAnUntouchedOne()
    {
        var original = await File.ReadAllBytesAsync(CtSmall);
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var entry = (await Index.FindAsync(upload.Handle))!;
        var stored = await StoredPlaintextAsync(upload.Handle);

        var restored = stored.ToArray();
        await Watermarks.RestoreAsync(entry.Handle, entry.Seal, entry.DetachedSeal, entry.OriginalSha256, restored, restored.Length, CancellationToken.None);
        Assert.Equal(original, restored);

        // One sample in the middle of the image, one step: the seal no longer verifies.
        var tampered = stored.ToArray();
        tampered[^(64 * 128 * 2)] ^= 0x01;
        var error = await Assert.ThrowsAsync<SealIntegrityException>(() => Watermarks.RestoreAsync(entry.Handle, entry.Seal, entry.DetachedSeal, entry.OriginalSha256, tampered, tampered.Length, CancellationToken.None));
        Assert.Contains("does not verify", error.Message);

        // The seal of this record does not pass for another one.
        var other = stored.ToArray();
        await Assert.ThrowsAsync<SealIntegrityException>(() => Watermarks.RestoreAsync("someotherhandle", entry.Seal, entry.DetachedSeal, entry.OriginalSha256, other, other.Length, CancellationToken.None));
    }

    [Fact]
    public async Task TheTraceEndpoint_RefusesAConsumersCertificate()
    {
        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).TraceFileAsync(CtSmall));

        Assert.Equal(403, error.Status);
        Assert.Equal("urn:trustedproxy:problem:forbidden", error.ProblemType);
    }

    [Fact]
    public async Task ProblemResponses_NameTheirRequest_AsTheDecisionLogRecordsIt()
    {
        var compressed = DicomCorpus.WellFormedPart10.First(f => f.IsCompressed);
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(compressed.Path);
        Execute(Index, "UPDATE records SET detached_seal = $seal WHERE handle = $handle", ("$seal", new byte[] { 0x11, 0x01 }), ("$handle", upload.Handle));

        using var denied = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/decisions"));
        using var failed = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{upload.Handle}/content"));

        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var decisions = await Proxy.Services.GetRequiredService<DecisionLog>().ReadAsync(0, 1000);
        var deniedDecision = Assert.Single(decisions, d => d.RequestId == denied.Headers.GetValues("Request-Id").Single());
        Assert.False(deniedDecision.Permitted);
        var failedDecision = Assert.Single(decisions, d => d.RequestId == failed.Headers.GetValues("Request-Id").Single());
        Assert.True(failedDecision.Permitted);
        Assert.Contains("/content", failedDecision.Resource);
    }

    [Fact]
    public async Task TheTraceEndpoint_SaysNoValidMark_ForAnUnmarkedImage_AndSealedForAStoredOriginal()
    {
        var compliance = Proxy.Client(ProxyRole.Compliance);

        var unmarked = await compliance.TraceFileAsync(CtSmall);
        Assert.Equal("no-valid-mark", unmarked.Status);
        Assert.Null(unmarked.ConsumerOrganisation);

        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var sealedOriginal = await compliance.TraceAsync(new MemoryStream(await StoredPlaintextAsync(upload.Handle)), "application/dicom");
        Assert.Equal("sealed", sealedOriginal.Status);
        Assert.Equal(upload.Handle, sealedOriginal.RecordHandle);
        Assert.Equal("Local Hospital", sealedOriginal.OriginOrganisation);
    }

    [Fact]
    public async Task TheTraceEndpoint_AnswersBadInputWithAProblem()
    {
        var compliance = Proxy.Client(ProxyRole.Compliance);

        var notPng = await Assert.ThrowsAsync<TrustedProxyException>(() => compliance.TraceAsync(new MemoryStream([.. PngSignature, .. "not really"u8]), "image/png"));
        Assert.Equal((400, "urn:trustedproxy:problem:invalid-image"), (notPng.Status, notPng.ProblemType));

        var notDicom = await Assert.ThrowsAsync<TrustedProxyException>(() => compliance.TraceAsync(new MemoryStream(new byte[4096]), "application/dicom"));
        Assert.Equal("urn:trustedproxy:problem:not-dicom-part10", notDicom.ProblemType);

        var text = await Assert.ThrowsAsync<TrustedProxyException>(() => compliance.TraceAsync(new MemoryStream("hello"u8.ToArray()), "text/plain"));
        Assert.Equal(415, text.Status);
    }

    [Fact]
    public async Task TheDecisionLog_HoldsEachRequestsIdAndFingerprintTag()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var consumer = Consumer("St Olav", out _);
        var (_, _, requestId) = await FetchAsync(consumer, upload.Handle);

        var decisions = await Proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/decisions?limit=10000"));
        var body = await decisions.Content.ReadAsStringAsync();

        Assert.Contains($"\"requestId\":\"{requestId}\"", body);
        Assert.Contains($"\"requestTag\":\"{Watermarks.RequestTag(requestId!)}\"", body);
    }

    [Fact]
    public async Task TraceCommand_NamesTheConsumer_InOneLine_AndABadFileIsOneLineOnStandardError()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        var consumer = Consumer("St Olav", out var serial);
        var (copy, _, requestId) = await FetchAsync(consumer, upload.Handle);
        using var work = new TemporaryDirectory();
        var leaked = Path.Combine(work.Path, "leaked.dcm");
        await File.WriteAllBytesAsync(leaked, copy);
        var leakedPng = Path.Combine(work.Path, "leaked.png");
        await File.WriteAllBytesAsync(leakedPng, StoredValuePng.Encode(Image(await DicomFile.ReadAsync(new MemoryStream(copy)))));

        foreach (var path in new[] { leaked, leakedPng })
        {
            var (exitCode, output, error) = await CliProcess.RunAsync(Proxy.Root, "trace", path, "--server", Proxy.BaseAddress.ToString());
            Assert.True(exitCode == 0, error);
            var line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("\tfingerprinted\tto St Olav\t", line);
            Assert.Contains(serial, line);
            Assert.Contains(requestId!, line);
        }

        var garbage = Path.Combine(work.Path, "garbage.png");
        await File.WriteAllBytesAsync(garbage, [.. PngSignature, .. "truncated"u8]);
        var bad = await CliProcess.RunAsync(Proxy.Root, "trace", garbage, "--server", Proxy.BaseAddress.ToString());
        Assert.Equal(1, bad.ExitCode);
        Assert.Single(bad.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tproxy: the proxy refused: not a PNG", bad.Error);
    }

    private RecordIndex Index => Proxy.Services.GetRequiredService<RecordIndex>();

    private RecordWatermarks Watermarks => Proxy.Services.GetRequiredService<RecordWatermarks>();

    private static void AssertTracedTo(TraceReport traced, string organisation, string serial, string? requestId)
    {
        Assert.Equal("fingerprinted", traced.Status);
        Assert.Equal(organisation, traced.ConsumerOrganisation);
        Assert.Equal(serial, traced.CertificateSerial);
        Assert.NotNull(traced.RequestId);
        if (requestId is not null)
        {
            Assert.Equal(requestId, traced.RequestId);
        }

        Assert.NotNull(traced.DecisionId);
        Assert.InRange(traced.MarkedAt!.Value, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
    }

    /// <summary>A consumer of another organisation than the local hospital: its copies are fingerprinted.</summary>
    private TrustedProxyClient Consumer(string organisation, out string serial)
    {
        using var credential = Proxy.OpenCa().IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(1));
        serial = credential.Serial;
        return Proxy.Client(X509CertificateLoaderCopy(credential));
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 X509CertificateLoaderCopy(IssuedCredential credential) =>
        System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x");

    /// <summary>Fetches a record's content; returns the bytes, the Watermark header and the request id.</summary>
    private static async Task<(byte[] Copy, string? Mark, string? RequestId)> FetchAsync(TrustedProxyClient client, string handle)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{handle}/content"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var copy = await response.Content.ReadAsByteArrayAsync();
        var digest = response.Headers.GetValues("Repr-Digest").Single();
        Assert.Equal($"sha-256=:{Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(copy))}:", digest);
        return (copy, response.Headers.TryGetValues("Watermark", out var mark) ? mark.Single() : null, response.Headers.TryGetValues("Request-Id", out var id) ? id.Single() : null);
    }

    private async Task<byte[]> StoredPlaintextAsync(string handle)
    {
        var entry = (await Index.FindAsync(handle))!;
        await using var content = await Proxy.Services.GetRequiredService<RecordReader>().OpenAsync(entry, CancellationToken.None);
        using var buffer = new MemoryStream();
        await content.Stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private static void Execute(RecordIndex index, string sql, params (string Name, object Value)[] parameters)
    {
        using var connection = index.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private void SetSealKind(string handle, RecordSealKind kind)
    {
        using var connection = Index.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE records SET seal_kind = $kind WHERE handle = $handle";
        command.Parameters.AddWithValue("$kind", kind.ToString());
        command.Parameters.AddWithValue("$handle", handle);
        Assert.Equal(1, command.ExecuteNonQuery());
    }

    private static PixelImage Image(DicomFile file)
    {
        Assert.True(PixelImage.TryFromDicom(file, out var image, out var refusal), refusal?.Message);
        return image;
    }
}
