using Microsoft.Extensions.Options;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Rendering;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Watermarking;

/// <summary>How a copy submitted for tracing is encoded.</summary>
internal enum CopyFormat
{
    /// <summary>A DICOM Part 10 file.</summary>
    Dicom,

    /// <summary>A PNG of one frame's stored values.</summary>
    Png,
}

/// <summary>A copy submitted for tracing is not an image the proxy reads; the message says why and may be shown to the caller.</summary>
internal sealed class InvalidImageException(string message) : Exception(message);

/// <summary>
/// Leak tracing, behind both doors a compliance officer may use (the API's <c>POST /api/v1/trace</c>
/// and the dashboard's form): a copy found outside has its fingerprint read and authenticated under
/// the proxy's key, and its request tag looked up in the decision log: who received it, when,
/// under which request. The copy is held in memory only, never written to disk.
/// </summary>
internal sealed partial class LeakTracer(RecordWatermarks watermarks, DecisionLog decisions, RecordIndex index, IOptions<DicomReaderLimits> limits, ILogger<LeakTracer> logger)
{
    /// <summary>Largest copy traced (TrustedProxy:Watermarking:MaxInMemoryBytes: the copy is held whole).</summary>
    public long MaxCopyBytes => watermarks.Options.MaxInMemoryBytes;

    /// <summary>A PNG if the copy starts with the PNG signature, else DICOM (which the reader then checks).</summary>
    public static CopyFormat Sniff(ReadOnlySpan<byte> copy) => copy.StartsWith(PngChunks.Signature) ? CopyFormat.Png : CopyFormat.Dicom;

    /// <summary>Traces one copy. Throws <see cref="InvalidImageException"/> or <see cref="DicomFormatException"/> for what cannot be read.</summary>
    public async Task<TraceReport> TraceAsync(ReadOnlyMemory<byte> copy, CopyFormat format, CancellationToken cancellationToken)
    {
        TraceResult result;
        if (format == CopyFormat.Png)
        {
            try
            {
                PngDecoder.Decode(copy.Span);
            }
            catch (FormatException e)
            {
                throw new InvalidImageException($"not a PNG this proxy reads: {e.Message}");
            }

            result = watermarks.Watermarker.TracePng(copy.Span);
        }
        else
        {
            using var stream = new MemoryStream(copy.ToArray(), writable: false);
            result = watermarks.Watermarker.Trace(await DicomFile.ReadAsync(stream, limits.Value, cancellationToken));
        }

        var report = await ReportAsync(result);
        LogTrace(logger, report.Status, report.RequestId ?? "-", report.ConsumerOrganisation ?? "-");
        return report;
    }

    private async Task<TraceReport> ReportAsync(TraceResult result)
    {
        switch (result.Status)
        {
            case TraceStatus.Fingerprinted:
            {
                var fingerprint = result.Fingerprint!;
                var consumerTag = RecordWatermarks.TagText(fingerprint.ConsumerTag);
                var requestTag = RecordWatermarks.TagText(fingerprint.RequestTag);
                var decision = (await decisions.FindByRequestTagAsync(requestTag)).FirstOrDefault();
                if (decision is not null && watermarks.ConsumerTag(decision.Organisation) == consumerTag)
                {
                    return new TraceReport("fingerprinted", $"{result.Detail}; handed out to {decision.Organisation} under request {decision.RequestId}", result.Frame, fingerprint.Time,
                        decision.Organisation, decision.CertificateSerial, decision.RequestId, decision.Resource, decision.Id, decision.At, consumerTag, requestTag);
                }

                // The request is not (or no longer) in the log: name the consumer from its tag if it is a known organisation.
                var organisation = (await decisions.OrganisationsAsync()).FirstOrDefault(o => watermarks.ConsumerTag(o) == consumerTag);
                var detail = decision is null
                    ? $"{result.Detail}; the request is not in the decision log"
                    : $"{result.Detail}; the request in the decision log belongs to another consumer than the fingerprint names";
                return new TraceReport("fingerprinted", detail, result.Frame, fingerprint.Time, organisation, ConsumerTag: consumerTag, RequestTag: requestTag);
            }

            case TraceStatus.Sealed:
            {
                var seal = result.Seal!;
                var entry = await index.FindAsync(seal.RecordHandle);
                var origin = entry is not null && watermarks.Watermarker.OriginTag(entry.OriginOrganisation) == seal.OriginTag ? entry.OriginOrganisation : null;
                return new TraceReport("sealed", $"{result.Detail}; no fingerprint: it was not handed out with one", result.Frame, seal.Time, RecordHandle: seal.RecordHandle, OriginOrganisation: origin);
            }

            default:
                return new TraceReport("no-valid-mark", result.Detail);
        }
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Trace: {Status}, request {RequestId}, consumer {Organisation}")]
    private static partial void LogTrace(ILogger logger, string status, string requestId, string organisation);
}
