using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using TrustedProxy.Client;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>
/// Every endpoint of the route table that touches records (its action uploads, searches, retrieves
/// or deletes) asks the decision point about each record: with a policy that withholds every record
/// from one organisation, a request of that organisation to each such endpoint, permitted at the
/// request level, reaches no record (403, or a search without it), nothing is stored, and a
/// record-level denial is recorded for exactly that route.
/// </summary>
public sealed class RecordRouteTableTests : OwnPolicyTest
{
    private static readonly ProxyAction[] RecordActions = [ProxyAction.Upload, ProxyAction.Search, ProxyAction.Retrieve, ProxyAction.RetrieveOblivious, ProxyAction.Delete];

    [Fact]
    public async Task EveryEndpointThatTouchesRecords_DecidesEachRecord_AndReachesNoneTheRecordLevelPolicyWithholds()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = new DicomFileBuilder().Patient("ROUTE-1", "Route^One").Study("1.2.826.0.1.77.1", "1.2.826.0.1.77.1.1", "20200202", "CT").PixelData(64);
        var firstUpload = await producer.UploadAsync(new MemoryStream(first.Build()));
        var secondUpload = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("ROUTE-2", "Route^Two").Study("1.2.826.0.1.77.2", "1.2.826.0.1.77.2.1", "20200202", "CT").PixelData(64).Build()));

        using var consumerCredential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Consumer, TimeSpan.FromDays(1));
        using var producerCredential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Producer, TimeSpan.FromDays(1));
        using var adminCredential = Proxy.OpenCa().IssueClient("Haukeland", ProxyRole.Admin, TimeSpan.FromDays(1));
        var clients = new Dictionary<ProxyRole, TrustedProxyClient>
        {
            [ProxyRole.Consumer] = Proxy.Client(consumerCredential.Certificate),
            [ProxyRole.Producer] = Proxy.Client(producerCredential.Certificate),
            [ProxyRole.Admin] = Proxy.Client(adminCredential.Certificate),
        };

        // An offer made while the records were still shared, for the choice endpoint.
        using var offered = await clients[ProxyRole.Consumer].SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/oblivious/offers")
        {
            Content = JsonContent.Create(new ObliviousOfferRequest([firstUpload.Handle, secondUpload.Handle], 1)),
        });
        var offer = (await offered.Content.ReadFromJsonAsync<ObliviousOffer>(new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;
        var choice = new OtReceiver(OtOffer.Parse(Convert.FromBase64String(offer.Offer)), [0]).Choice.ToBytes();

        await AddPolicyAsync("90-withhold.yaml", """
            rules:
              - id: haukeland-withheld
                description: every record is withheld from Haukeland
                effect: deny
                organisations: [Haukeland]
                record:
                  origin: [Local Hospital, Haukeland]
            """);

        var values = new Dictionary<string, string>
        {
            ["handle"] = firstUpload.Handle,
            ["study"] = "1.2.826.0.1.77.1",
            ["series"] = "1.2.826.0.1.77.1.1",
            ["instance"] = first.SopInstanceUid,
            ["frames"] = "1",
            ["sessionId"] = offer.SessionId,
        };
        var secrets = new[] { firstUpload.Handle, first.SopInstanceUid, "1.2.826.0.1.77.1" };
        var routes = Routes.All(Proxy.Services).Where(r => RecordActions.Contains(r.Action!.Value)).ToList();
        var tried = 0;
        foreach (var (endpoint, method, action) in routes)
        {
            var resource = Routes.Resource(endpoint, method);
            var role = action switch { ProxyAction.Upload => ProxyRole.Producer, ProxyAction.Delete => ProxyRole.Admin, _ => ProxyRole.Consumer };
            var before = await LastDecisionIdAsync();
            // STOW-RS to a study stores the new instance of that study.
            var request = new HttpRequestMessage(new HttpMethod(method), Routes.Path(endpoint.RoutePattern, name => method == "POST" && name == "study" ? "1.2.826.0.1.77.3" : values[name]))
            {
                Content = Body(resource, firstUpload.Handle, secondUpload.Handle, choice),
            };
            request.Headers.Accept.ParseAdd("*/*");

            using var response = await clients[role].SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();

            var status = (int)response.StatusCode;
            Assert.True(status == 403 || (action == ProxyAction.Search && status == 200) || (resource.StartsWith("POST /dicomweb", StringComparison.Ordinal) && status == 409), $"{resource}: {status} {body}");
            Assert.All(secrets, secret => Assert.DoesNotContain(secret, body, StringComparison.Ordinal));
            var decisions = await DecisionsAfterAsync(before);
            Assert.Contains(decisions, d => d is { Permitted: true, RecordHandle: null } && d.Resource == resource);
            Assert.Contains(decisions, d => d is { Permitted: false, Rule: "haukeland-withheld", RecordHandle: not null } && d.Resource == resource);
            Assert.DoesNotContain(decisions, d => d is { Permitted: true, RecordHandle: not null });
            tried++;
        }

        Assert.True(tried >= 20, $"only {tried} record endpoints");
        Assert.Equal(2, (await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch())).Items.Count);
    }

    private static HttpContent? Body(string resource, string first, string second, byte[] choice)
    {
        var dicom = new DicomFileBuilder().Patient("ROUTE-3", "Route^Three").Study("1.2.826.0.1.77.3", "1.2.826.0.1.77.3.1", "20200202", "CT").PixelData(64).Build();
        if (resource.StartsWith("POST /dicomweb", StringComparison.Ordinal))
        {
            const string boundary = "route-boundary";
            var body = new MemoryStream();
            body.Write(Encoding.ASCII.GetBytes($"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n"));
            body.Write(dicom);
            body.Write(Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n"));
            var multipart = new ByteArrayContent(body.ToArray());
            multipart.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/related; type=\"application/dicom\"; boundary={boundary}");
            return multipart;
        }

        if (resource.StartsWith("POST /api/v1/records", StringComparison.Ordinal))
        {
            var upload = new ByteArrayContent(dicom);
            upload.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            return upload;
        }

        if (resource.EndsWith("/choice", StringComparison.Ordinal))
        {
            var content = new ByteArrayContent(choice);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            return content;
        }

        return resource.StartsWith("POST /api/v1/oblivious/offers", StringComparison.Ordinal) ? JsonContent.Create(new ObliviousOfferRequest([first, second], 1)) : null;
    }
}
