using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Watermarking;

namespace TrustedProxy.FunctionalTests.Watermarking;

/// <summary>
/// pydicom's corpus through the watermarking server: each file is sealed in its pixels or by a
/// detached seal; a consumer allowed unmarked originals gets every file back bit-exact; a consumer
/// whose copies are fingerprinted gets, for each file, either a fingerprinted copy that traces to it
/// and gives back the original bit-exact once the fingerprint is removed, or (pixels that cannot
/// carry a mark) the original itself.
/// </summary>
public sealed class CorpusWatermarkingTests : ProxyTest
{
    // The corpus's variants of one instance share a SOP Instance UID: each is a record of its own here.
    protected override Task<ProxyHost> StartProxyAsync() =>
        ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Records:DuplicateInstance"] = "keep-all" });

    [Fact]
    public async Task EveryCorpusFile_IsSealed_AndEveryCopy_IsTheOriginal_OrAFingerprintedCopyThatTracesAndRestoresToIt()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var unmarked = Proxy.Client(ProxyRole.Consumer);
        using var credential = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(1));
        var fingerprinted = Proxy.Client(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
        var watermarks = Proxy.Services.GetRequiredService<RecordWatermarks>();
        var seals = new Dictionary<string, int>();
        var marked = 0;

        foreach (var file in DicomCorpus.WellFormedPart10)
        {
            var original = await File.ReadAllBytesAsync(file.Path);
            var upload = await producer.UploadFileAsync(file.Path);
            seals[upload.Seal!] = seals.GetValueOrDefault(upload.Seal!) + 1;
            if (file.IsCompressed)
            {
                Assert.True(upload.Seal == "detached", $"{file}: {upload.Seal}");
            }

            using (var back = new MemoryStream())
            {
                await unmarked.FetchAsync(upload.Handle, back);
                Assert.True(Same(original, back.ToArray()), $"{file} did not come back bit-exact");
            }

            using var copyStream = new MemoryStream();
            await fingerprinted.FetchAsync(upload.Handle, copyStream);
            var copy = copyStream.ToArray();
            if (Same(original, copy))
            {
                continue;
            }

            marked++;
            var copyFile = await DicomFile.ReadAsync(new MemoryStream(copy));
            var trace = watermarks.Watermarker.Trace(copyFile);
            Assert.True(trace.Status == TraceStatus.Fingerprinted, $"{file}: {trace.Detail}");
            Assert.Equal(watermarks.ConsumerTag("St Olav"), RecordWatermarks.TagText(trace.Fingerprint!.ConsumerTag));
            Assert.True(watermarks.Watermarker.RemoveFingerprint(copyFile), $"{file}: the fingerprint could not be removed");
            if (file.TransferSyntaxUid == Deflated)
            {
                // Written again, a deflated data set is deflated anew (docs/watermarking.md): the pixels are the original's.
                var originalFile = await DicomFile.ReadAsync(new MemoryStream(original));
                Assert.True(Same(PixelData(originalFile), PixelData(copyFile)), $"{file}: removing the fingerprint did not give back the original pixels");
                continue;
            }

            Assert.True(Same(original, await copyFile.ToBytesAsync()), $"{file}: removing the fingerprint did not give back the original");
        }

        Assert.True(seals.GetValueOrDefault("pixels") >= 5, string.Join(", ", seals));
        Assert.True(seals.GetValueOrDefault("detached") >= 10, string.Join(", ", seals));
        Assert.True(marked >= 5, $"only {marked} copies were fingerprinted");
    }

    private const string Deflated = "1.2.840.10008.1.2.1.99";

    private static byte[] PixelData(DicomFile file) => file.Dataset.Find(DicomTag.PixelData)!.Value.ToArray();

    private static bool Same(byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b);
}
