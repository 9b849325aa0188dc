using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.FunctionalTests.DicomWeb;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>Record-level decisions through the real server: consent, break-glass, oblivious set sizes, views, uploads, study counts.</summary>
public sealed class RecordDecisionTests : OwnPolicyTest
{
    [Fact]
    public async Task AConsentWithdrawal_WithholdsThePatientsRecordsFromThatOrganisation_AndIsRecordedPerRecord()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var withdrawn = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("CONSENT-A", "Withdrawn^Ann").Study("1.2.826.0.1.88.1", "1.2.826.0.1.88.1.1", "20220101", "CT").Build()));
        var shared = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("CONSENT-B", "Shared^Ben").Study("1.2.826.0.1.88.2", "1.2.826.0.1.88.2.1", "20220101", "CT").Build()));
        using var haukelandCredential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1));
        using var stOlavCredential = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(1));
        var haukeland = Proxy.Client(haukelandCredential.Certificate);
        var pseudonym = (await haukeland.GetAsync(withdrawn.Handle)).PatientPseudonym!;

        // The officer names the patient by the pseudonym search results show.
        await AddPolicyAsync("60-consent.yaml", $"""
            consent:
              - id: consent-test-1
                description: objected to sharing with Haukeland
                patient: {pseudonym}
                withheldFrom:
                  organisations: [Haukeland]
            """);
        var before = await LastDecisionIdAsync();

        var found = await haukeland.SearchAsync(new RecordSearch());
        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => haukeland.FetchAsync(withdrawn.Handle, Stream.Null));
        var (wadoStatus, _) = await DicomWebClient.RetrieveAsync(haukeland, "dicomweb/studies/1.2.826.0.1.88.1");
        var (qidoStatus, studies, _) = await DicomWebClient.GetJsonAsync(haukeland, "dicomweb/studies");

        Assert.Equal([shared.Handle], found.Items.Select(i => i.Handle));
        Assert.Equal(403, refused.Status);
        Assert.Contains("denied by consent-test-1: objected to sharing with Haukeland", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(403, wadoStatus);
        Assert.Equal(200, qidoStatus);
        Assert.DoesNotContain("1.2.826.0.1.88.1\"", studies.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(2, (await Proxy.Client(stOlavCredential.Certificate).SearchAsync(new RecordSearch())).Items.Count);
        var denial = (await DecisionsAfterAsync(before)).First(d => d.RecordHandle == withdrawn.Handle);
        Assert.Equal(("consent-test-1", false, Store.CurrentVersion.Hash), (denial.Rule, denial.Permitted, denial.PolicyVersion));
        Assert.Equal("record", denial.Explanation!.Level);
        Assert.Contains(denial.Explanation.Matched, m => m is { Rule: "consent-test-1", Kind: "consent", Status: "applied" });
        Assert.DoesNotContain(pseudonym, denial.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BreakGlass_OpensAWithdrawnRecordInAnEmergency_FingerprintedFlaggedCountedAndJustified()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("GLASS-1", "Glass^Gus").Image(64, 64, seed: 3).Build()));
        var pseudonym = (await Proxy.Client(ProxyRole.Consumer).GetAsync(upload.Handle)).PatientPseudonym!;
        await AddPolicyAsync("60-consent.yaml", $"consent:\n  - id: consent-test-2\n    patient: {pseudonym}\n");
        using var credential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1));
        var clinician = Proxy.Client(credential.Certificate);
        long alerts = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "trustedproxy.policy.break_glass")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref alerts, value));
        listener.Start();

        Assert.Equal(403, (await Assert.ThrowsAsync<TrustedProxyException>(() => clinician.FetchAsync(upload.Handle, Stream.Null))).Status);
        clinician.PurposeOfUse = "emergency";
        Assert.Equal(403, (await Assert.ThrowsAsync<TrustedProxyException>(() => clinician.FetchAsync(upload.Handle, Stream.Null))).Status);
        clinician.BreakGlassJustification = "unconscious patient in A&E, prior CT needed";
        var before = await LastDecisionIdAsync();
        using var copy = new MemoryStream();
        using var response = await clinician.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{upload.Handle}/content"));
        await response.Content.CopyToAsync(copy);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("fingerprinted", response.Headers.GetValues("Watermark").Single());
        var glass = Assert.Single(await DecisionsAfterAsync(before), d => d.RecordHandle == upload.Handle);
        Assert.True(glass is { Permitted: true, BreakGlass: true, Rule: "break-glass-emergency", Purpose: "emergency" });
        Assert.Equal("unconscious patient in A&E, prior CT needed", glass.Justification);
        Assert.Contains(glass.Explanation!.Matched, m => m is { Rule: "consent-test-2", Status: "overridden" });
        Assert.True(Interlocked.Read(ref alerts) >= 1);

        clinician.BreakGlassJustification = new string('x', 501);
        var tooLong = await Assert.ThrowsAsync<TrustedProxyException>(() => clinician.FetchAsync(upload.Handle, Stream.Null));
        Assert.Equal((400, "urn:trustedproxy:problem:invalid-request-context"), (tooLong.Status, tooLong.ProblemType));
    }

    [Fact]
    public async Task AnObliviousTransfer_SmallerThanThePolicysN_IsRefusedNamingTheRule()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var handles = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            handles.Add((await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient($"OT-{i}", "Set^Size").Build()))).Handle);
        }

        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";
        using var response = await researcher.SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/oblivious/offers") { Content = JsonContent.Create(new ObliviousOfferRequest(handles, 1)) });
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(403, (int)response.StatusCode);
        Assert.Equal("urn:trustedproxy:problem:ot-set-too-small", problem.GetProperty("type").GetString());
        Assert.Equal("research-oblivious-sets", problem.GetProperty("rule").GetString());
        Assert.Equal(8, problem.GetProperty("minObliviousSet").GetInt32());
        var single = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).FetchObliviousAsync([handles[0]], [handles[0]]));
        Assert.Contains("oblivious-sets-of-two", single.Detail, StringComparison.Ordinal);
        Assert.Single(await Proxy.Client(ProxyRole.Consumer).FetchObliviousAsync(handles, [handles[1]]));
    }

    [Fact]
    public async Task ARecordTheRecordLevelPolicyGivesOnlyDeidentified_IsWithheldFromAnOriginalViewRequest_AndGivenInTheDeidentifiedView()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("VIEW-9", "Screened^Sara").Study("1.2.826.0.1.99.1", "1.2.826.0.1.99.1.1", "20230101", "MG").Text(0x0028, 0x0301, "CS", "NO").Build()));
        await AddPolicyAsync("60-views.yaml", """
            rules:
              - id: mammograms-deidentified
                effect: oblige
                actions: [search, retrieve]
                record: {modalities: [MG]}
                obligations: {view: deidentified}
            """);
        var consumer = Proxy.Client(ProxyRole.Consumer);

        var original = await Assert.ThrowsAsync<TrustedProxyException>(() => consumer.GetAsync(upload.Handle));
        var deidentified = await consumer.GetAsync(upload.Handle, deidentified: true);

        Assert.Equal(403, original.Status);
        Assert.Contains("rule mammograms-deidentified gives this record only the de-identified view", original.Detail, StringComparison.Ordinal);
        Assert.StartsWith("deidentified:", deidentified.View, StringComparison.Ordinal);
        Assert.Empty((await consumer.SearchAsync(new RecordSearch { PatientId = "VIEW-9" })).Items);
    }

    [Fact]
    public async Task AnUploadTheRecordLevelPolicyRefuses_Gets403_AndLeavesNothingBehind()
    {
        await AddPolicyAsync("60-uploads.yaml", """
            rules:
              - id: no-angiography-uploads
                description: angiograms go to the regional archive, not through the proxy
                effect: deny
                actions: [upload]
                record: {modalities: [XA]}
            """);
        var producer = Proxy.Client(ProxyRole.Producer);

        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Study("1.2.826.0.1.66.1", "1.2.826.0.1.66.1.1", "20230101", "XA").Build())));
        var (stowStatus, stow) = await DicomWebClient.StoreAsync(producer, "dicomweb/studies", [new DicomFileBuilder().Study("1.2.826.0.1.66.2", "1.2.826.0.1.66.2.1", "20230101", "XA").Build()]);

        Assert.Equal(403, refused.Status);
        Assert.Contains("no-angiography-uploads", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(409, stowStatus);
        Assert.Equal(0x0124, stow.GetProperty("00081198").GetProperty("Value")[0].GetProperty("00081197").GetProperty("Value")[0].GetInt32());
        Assert.Empty(await Proxy.CloudObjectsAsync());
        Assert.Empty((await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch())).Items);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Proxy.Root, "data", "staging"), "*", SearchOption.AllDirectories));
        await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Study("1.2.826.0.1.66.3", "1.2.826.0.1.66.3.1", "20230101", "CT").Build()));
    }

    [Fact]
    public async Task AnUploadTheRecordLevelPolicyRefuses_IsRefusedAtItsHeader_BeforeAnythingIsSealedOrStaged()
    {
        await AddPolicyAsync("60-uploads.yaml", """
            rules:
              - id: no-angiography-uploads
                description: angiograms go to the regional archive, not through the proxy
                effect: deny
                actions: [upload]
                record: {modalities: [XA]}
            """);
        var producer = Proxy.Client(ProxyRole.Producer);
        var staging = Path.Combine(Proxy.Root, "data", "staging");

        // The seals made by this proxy (its own meter factory), and every file created in its staging area.
        var meters = Proxy.Services.GetRequiredService<IMeterFactory>();
        long seals = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "trustedproxy.records.ingest_seals" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref seals, value));
        listener.Start();
        var created = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var marker = $"marker-{Guid.NewGuid():N}";
        var markerSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cacheFileSeen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new FileSystemWatcher(staging) { NotifyFilter = NotifyFilters.FileName };
        watcher.Created += (_, e) =>
        {
            created.Enqueue(e.Name!);
            if (e.Name == marker)
            {
                markerSeen.TrySetResult();
            }
            else if (e.Name!.EndsWith(".tpx", StringComparison.Ordinal))
            {
                cacheFileSeen.TrySetResult(e.Name);
            }
        };
        watcher.EnableRaisingEvents = true;

        var angiogram = new DicomFileBuilder().Patient("REFUSE-1", "Early^Refusal").Study("1.2.826.0.1.67.1", "1.2.826.0.1.67.1.1", "20230101", "XA").Image(64, 64, seed: 5).Build();
        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => producer.UploadAsync(new MemoryStream(angiogram)));

        // Events arrive in order: once the marker's is seen, any the refused upload caused has been too.
        await File.WriteAllBytesAsync(Path.Combine(staging, marker), []);
        await markerSeen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        File.Delete(Path.Combine(staging, marker));
        Assert.Equal(403, refused.Status);
        Assert.Equal([marker], created);
        Assert.Equal(0, Interlocked.Read(ref seals));

        // The same image as a CT is permitted: sealed once, and its cache file is seen being created.
        var ct = new DicomFileBuilder().Patient("REFUSE-1", "Early^Refusal").Study("1.2.826.0.1.67.2", "1.2.826.0.1.67.2.1", "20230101", "CT").Image(64, 64, seed: 5).Build();
        var stored = await producer.UploadAsync(new MemoryStream(ct));
        Assert.Equal(1, Interlocked.Read(ref seals));
        Assert.Equal(stored.Handle + ".tpx", await cacheFileSeen.Task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task StudyCountsAndModalities_DescribeOnlyTheRecordsTheCallerMaySee()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("STUDY-1", "Two^Series").Study("1.2.826.0.1.55.1", "1.2.826.0.1.55.1.1", "20230101", "CT").Build()));
        await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("STUDY-1", "Two^Series").Study("1.2.826.0.1.55.1", "1.2.826.0.1.55.1.2", "20230101", "MG").Build()));
        await AddPolicyAsync("60-mg.yaml", """
            rules:
              - id: haukeland-no-mammograms
                effect: deny
                organisations: [Haukeland]
                record: {modalities: [MG]}
            """);
        using var credential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1));

        var (_, seen, _) = await DicomWebClient.GetJsonAsync(Proxy.Client(credential.Certificate), "dicomweb/studies?StudyInstanceUID=1.2.826.0.1.55.1");
        var (_, all, _) = await DicomWebClient.GetJsonAsync(Proxy.Client(ProxyRole.Consumer), "dicomweb/studies?StudyInstanceUID=1.2.826.0.1.55.1");
        var (_, series, _) = await DicomWebClient.GetJsonAsync(Proxy.Client(credential.Certificate), "dicomweb/studies/1.2.826.0.1.55.1/series");

        static string Value(JsonElement study, string tag) => study.GetProperty(tag).GetProperty("Value")[0].ToString();
        Assert.Equal(("CT", "1", "1"), (Value(seen[0], "00080061"), Value(seen[0], "00201206"), Value(seen[0], "00201208")));
        Assert.Equal(("2", "2"), (Value(all[0], "00201206"), Value(all[0], "00201208")));
        Assert.Equal(1, series.GetArrayLength());
    }
}
