using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TrustedProxy.Client;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// A deliberately plain DICOMweb client for the tests: it builds multipart/related bodies and
/// splits responses by hand (RFC 2387), sharing no code with the proxy's DICOMweb implementation.
/// </summary>
internal static class DicomWebClient
{
    public const string Boundary = "test-boundary-7f3a";

    public static async Task<(int Status, JsonElement Body)> StoreAsync(TrustedProxyClient client, string path, IEnumerable<byte[]> instances)
    {
        var (status, body, _) = await PostAsync(client, path, Multipart(instances.Select(i => ("application/dicom", i))));
        return (status, body);
    }

    /// <summary>A STOW-RS body: each instance an <c>application/dicom</c> part.</summary>
    public static HttpContent StowContent(IEnumerable<byte[]> instances)
    {
        var content = new ByteArrayContent(Multipart(instances.Select(i => ("application/dicom", i))));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/related; type=\"application/dicom\"; boundary={Boundary}");
        return content;
    }

    /// <summary>A multipart/related body of these parts with <see cref="Boundary"/>, closed properly.</summary>
    public static byte[] Multipart(IEnumerable<(string ContentType, byte[] Content)> parts)
    {
        using var body = new MemoryStream();
        foreach (var (type, part) in parts)
        {
            body.Write(Encoding.ASCII.GetBytes($"--{Boundary}\r\nContent-Type: {type}\r\n\r\n"));
            body.Write(part);
            body.Write("\r\n"u8);
        }

        body.Write(Encoding.ASCII.GetBytes($"--{Boundary}--\r\n"));
        return body.ToArray();
    }

    /// <summary>Posts a body as it is (well-formed or not) as multipart/related with <paramref name="boundary"/> in its Content-Type.</summary>
    public static async Task<(int Status, JsonElement Body, string? ContentType)> PostAsync(TrustedProxyClient client, string path, byte[] body, string boundary = Boundary)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/related; type=\"application/dicom\"; boundary={boundary}");
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = content });
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response.Content.Headers.ContentType?.MediaType);
    }

    public static async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> GetJsonAsync(TrustedProxyClient client, string path, string? purpose = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("application/dicom+json");
        if (purpose is not null)
        {
            request.Headers.Add("Purpose-Of-Use", purpose);
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>Retrieves with WADO-RS and splits the multipart/related answer into its parts.</summary>
    public static async Task<(int Status, List<byte[]> Parts)> RetrieveAsync(TrustedProxyClient client, string path, string? purpose = null)
    {
        var (status, _, parts) = await RetrievePartsAsync(client, path, purpose);
        return (status, parts.Select(p => p.Body).ToList());
    }

    /// <summary>Retrieves with WADO-RS: the status, the response's Watermark header, and each part's headers (as written) and body.</summary>
    public static async Task<(int Status, string? Watermark, List<(string Headers, byte[] Body)> Parts)> RetrievePartsAsync(TrustedProxyClient client, string path, string? purpose = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        if (purpose is not null)
        {
            request.Headers.Add("Purpose-Of-Use", purpose);
        }

        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        var watermark = response.Headers.TryGetValues("Watermark", out var marks) ? string.Join(", ", marks) : null;
        if (!response.IsSuccessStatusCode)
        {
            return ((int)response.StatusCode, watermark, []);
        }

        var boundary = response.Content.Headers.ContentType!.Parameters.Single(p => p.Name == "boundary").Value!.Trim('"');
        var delimiter = Encoding.ASCII.GetBytes($"--{boundary}");
        var parts = new List<(string Headers, byte[] Body)>();
        var position = body.AsSpan().IndexOf(delimiter);
        while (position >= 0)
        {
            var start = position + delimiter.Length;
            if (body.AsSpan(start).StartsWith("--"u8))
            {
                break;
            }

            var headersEnd = body.AsSpan(start).IndexOf("\r\n\r\n"u8) + start + 4;
            var next = body.AsSpan(headersEnd).IndexOf(delimiter) + headersEnd;
            parts.Add((Encoding.ASCII.GetString(body[start..headersEnd]), body[headersEnd..(next - 2)]));
            position = next;
        }

        return ((int)response.StatusCode, watermark, parts);
    }

    public static string? Value(JsonElement dataset, string tag) =>
        dataset.TryGetProperty(tag, out var element) && element.TryGetProperty("Value", out var values) && values.GetArrayLength() > 0
            ? values[0].ValueKind switch
            {
                JsonValueKind.Object => values[0].TryGetProperty("Alphabetic", out var name) ? name.GetString() : null,
                JsonValueKind.Number => values[0].GetRawText(),
                _ => values[0].GetString(),
            }
            : null;

    /// <summary>dcmdump (dcmtk) reads the file without an error: an opinion independent of the proxy's codec.</summary>
    public static async Task<string> DcmdumpErrorsAsync(byte[] file)
    {
        var path = Path.Combine(Path.GetTempPath(), $"tproxy-dcmdump-{Guid.NewGuid():N}.dcm");
        await File.WriteAllBytesAsync(path, file);
        try
        {
            var start = new ProcessStartInfo("dcmdump") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("-E");
            start.ArgumentList.Add(path);
            using var process = Process.Start(start) ?? throw new InvalidOperationException("dcmdump (dcmtk) is not installed");
            var output = process.StandardOutput.ReadToEndAsync();
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            await output;
            return process.ExitCode == 0 && !error.Contains("E: ") ? string.Empty : $"exit {process.ExitCode}: {error}";
        }
        finally
        {
            File.Delete(path);
        }
    }
}
