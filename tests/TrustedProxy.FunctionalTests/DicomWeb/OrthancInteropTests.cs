using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>A real DICOMweb client, Orthanc, pushes a study to the proxy with STOW-RS and pulls it back with QIDO-RS and WADO-RS, over mutual TLS.</summary>
public sealed class OrthancInteropTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.42";

    [Fact]
    public async Task Orthanc_PushesAStudyWithStow_AndGetsItBackBitExactWithQidoAndWado()
    {
        await using var orthanc = await OrthancProcess.StartAsync(Proxy.BaseAddress, Proxy.Certificates);
        var files = Enumerable.Range(1, 3).Select(i => new DicomFileBuilder()
            .Patient("ORTHANC-1", "Interop^Ingrid")
            .Study(Study, $"{Study}.{(i + 1) / 2}", "20220202", "CT")
            .Text(0x0020, 0x0013, "IS", i.ToString())
            .PixelData(4096, seed: i)
            .Build()).ToList();
        string orthancStudy = null!;
        foreach (var file in files)
        {
            orthancStudy = await orthanc.AddAsync(file);
        }

        // Orthanc → proxy: STOW-RS, with Orthanc's own multipart encoding, chunked body and long boundary.
        await orthanc.PostAsync("dicom-web/servers/producer/stow", new { Resources = new[] { orthancStudy } });

        var consumer = Proxy.Client(ProxyRole.Consumer);
        var stored = await consumer.SearchAsync(new RecordSearch { StudyInstanceUid = Study });
        Assert.Equal(3, stored.Items.Count);
        foreach (var record in stored.Items)
        {
            using var fetched = new MemoryStream();
            await consumer.FetchAsync(record.Handle, fetched);
            Assert.Contains(files, f => f.AsSpan().SequenceEqual(fetched.ToArray()));
        }

        // Proxy → Orthanc: QIDO-RS through Orthanc's client.
        var studies = await orthanc.PostAsync("dicom-web/servers/consumer/qido", new { Uri = "/studies", Arguments = new Dictionary<string, string> { ["PatientID"] = "ORTHANC-1" } });
        Assert.Equal(Study, Assert.Single(studies.AsArray())!["0020000D"]!["Value"]!.ToString().Trim('[', ']', '"', ' ', '\n'));

        // Proxy → Orthanc: WADO-RS into an Orthanc that forgot the study.
        (await orthanc.Http.DeleteAsync($"studies/{orthancStudy}")).EnsureSuccessStatusCode();
        Assert.Empty((await orthanc.GetAsync("instances")).AsArray());
        await orthanc.PostAsync("dicom-web/servers/consumer/retrieve", new { Resources = new[] { new { Study } } });

        var instances = (await orthanc.GetAsync("instances")).AsArray();
        Assert.Equal(3, instances.Count);
        foreach (var id in instances)
        {
            var bytes = await orthanc.Http.GetByteArrayAsync($"instances/{id}/file");
            Assert.Contains(files, f => f.AsSpan().SequenceEqual(bytes));
        }
    }

    [Fact]
    public async Task Orthanc_RePushingAStudy_CreatesNoDuplicates()
    {
        const string study = "1.2.826.0.1.3680043.9.7777.43";
        await using var orthanc = await OrthancProcess.StartAsync(Proxy.BaseAddress, Proxy.Certificates);
        string orthancStudy = null!;
        foreach (var i in Enumerable.Range(1, 3))
        {
            orthancStudy = await orthanc.AddAsync(new DicomFileBuilder($"{study}.1.{i}")
                .Patient("ORTHANC-2", "Again^Arne")
                .Study(study, $"{study}.1", "20220203", "CT")
                .Text(0x0020, 0x0013, "IS", i.ToString())
                .PixelData(4096, seed: i)
                .Build());
        }

        await orthanc.PostAsync("dicom-web/servers/producer/stow", new { Resources = new[] { orthancStudy } });
        var consumer = Proxy.Client(ProxyRole.Consumer);
        var first = await consumer.SearchAsync(new RecordSearch { StudyInstanceUid = study });
        var objects = (await Proxy.CloudObjectsAsync()).Count;

        // The same study again, as a PACS does after a network failure or a manual re-send: Orthanc
        // takes the answer as a success (it raises an error otherwise).
        await orthanc.PostAsync("dicom-web/servers/producer/stow", new { Resources = new[] { orthancStudy } });

        var after = await consumer.SearchAsync(new RecordSearch { StudyInstanceUid = study });
        Assert.Equal(3, first.Items.Count);
        Assert.Equal(first.Items.Select(r => r.Handle).Order(), after.Items.Select(r => r.Handle).Order());
        Assert.Equal(objects, (await Proxy.CloudObjectsAsync()).Count);
    }

    [Fact]
    public async Task Orthanc_WithOnePacsCertificate_ArchivesAStudyAndRetrievesItBack()
    {
        const string study = "1.2.826.0.1.3680043.9.7777.44";
        await using var orthanc = await OrthancProcess.StartAsync(Proxy.BaseAddress, Proxy.Certificates);
        var files = Enumerable.Range(1, 2).Select(i => new DicomFileBuilder($"{study}.1.{i}")
            .Patient("ORTHANC-3", "Pacs^Paula")
            .Study(study, $"{study}.1", "20220204", "CT")
            .Text(0x0020, 0x0013, "IS", i.ToString())
            .PixelData(4096, seed: i)
            .Build()).ToList();
        string orthancStudy = null!;
        foreach (var file in files)
        {
            orthancStudy = await orthanc.AddAsync(file);
        }

        // One DICOMweb server entry, one certificate (docs/dicomweb.md): archive, forget, retrieve.
        await orthanc.PostAsync("dicom-web/servers/pacs/stow", new { Resources = new[] { orthancStudy } });
        (await orthanc.Http.DeleteAsync($"studies/{orthancStudy}")).EnsureSuccessStatusCode();
        await orthanc.PostAsync("dicom-web/servers/pacs/retrieve", new { Resources = new[] { new { Study = study } } });

        var instances = (await orthanc.GetAsync("instances")).AsArray();
        Assert.Equal(2, instances.Count);
        foreach (var id in instances)
        {
            var bytes = await orthanc.Http.GetByteArrayAsync($"instances/{id}/file");
            Assert.Contains(files, f => f.AsSpan().SequenceEqual(bytes));
        }
    }
}
