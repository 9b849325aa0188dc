using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using TrustedProxy.Dicom;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Storage;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>
/// STOW-RS (PS3.18 10.5): a multipart/related body of application/dicom parts, each stored through
/// the same upload path as the records API. The answer is a Store Instances Response in the DICOM
/// JSON model: 200 when every instance is stored, 202 when some failed or were changed (a zeroed
/// executable preamble), 409 when none could be stored.
/// </summary>
internal static partial class StowRs
{
    // PS3.4 Annex B status codes used as Failure Reason / Warning Reason.
    private const ushort OutOfResources = 0xA700;
    private const ushort DataSetDoesNotMatch = 0xA900;
    private const ushort CannotUnderstand = 0xC000;
    private const ushort CoercionOfDataElements = 0xB000;
    private const ushort NotAuthorized = 0x0124;

    private static readonly DicomTag RetrieveUrl = new(0x0008, 0x1190);
    private static readonly DicomTag FailedSopSequence = new(0x0008, 0x1198);
    private static readonly DicomTag ReferencedSopSequence = new(0x0008, 0x1199);
    private static readonly DicomTag ReferencedSopClassUid = new(0x0008, 0x1150);
    private static readonly DicomTag ReferencedSopInstanceUid = new(0x0008, 0x1155);
    private static readonly DicomTag FailureReason = new(0x0008, 0x1197);
    private static readonly DicomTag WarningReason = new(0x0008, 0x1196);

    // How each stored instance was sealed, in a private block (PS3.5 §7.8): the standard response
    // has no attribute for it, and a DICOMweb client must be able to tell without a second request.
    private static readonly DicomTag SealPrivateCreator = new(0x0009, 0x0010);
    private static readonly DicomTag SealKind = new(0x0009, 0x1001);
    private static readonly DicomTag SealDetail = new(0x0009, 0x1002);

    /// <summary>The private creator of the seal attributes (0009,1001) seal kind and (0009,1002) its detail.</summary>
    public const string SealCreator = "TrustedProxy seal";

    public static async Task<IResult> StoreAsync(HttpContext context, string? study, RecordUploader uploader, IOptions<RecordStoreOptions> options, ILogger logger)
    {
        if (!MediaTypes.TryGetDicomBoundary(context.Request.ContentType, out var boundary, out var error))
        {
            LogRefusedContentType(logger, LogText.Escape(error));
            return Problem.Result(Problems.ProblemTypes.UnsupportedMediaType, error!);
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxStowBytes;
        }

        var reader = new MultipartReader(boundary, context.Request.Body)
        {
            BodyLengthLimit = options.Value.MaxUploadBytes,
            HeadersCountLimit = 16,
            HeadersLengthLimit = 16 * 1024,
        };
        var feature = context.Proxy();
        var stored = new List<DicomItem>();
        var failed = new List<DicomItem>();
        var warnings = 0;
        string? studyOfAll = study;
        var parts = 0;
        MultipartSection? section;
        while ((section = await reader.ReadNextSectionAsync(context.RequestAborted)) is not null)
        {
            parts++;
            var partType = section.ContentType?.Split(';')[0].Trim();
            if (partType is not null && !partType.Equals(MediaTypes.Dicom, StringComparison.OrdinalIgnoreCase))
            {
                failed.Add(Item(null, null, FailureReason, CannotUnderstand));
                await section.Body.CopyToAsync(Stream.Null, context.RequestAborted);
                continue;
            }

            try
            {
                var receipt = await uploader.UploadAsync(section.Body, feature.Identity, feature.AuthorizeUploadAsync, context.RequestAborted, study);
                var item = Item(receipt.SopClassUid, receipt.SopInstanceUid, receipt.Warnings.Count > 0 ? WarningReason : null, CoercionOfDataElements);
                if (receipt.StudyInstanceUid is not null && receipt.SeriesInstanceUid is not null && receipt.SopInstanceUid is not null)
                {
                    item.Dataset.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, InstanceUrl(context, receipt)));
                }

                item.Dataset.Set(DicomElement.Text(SealPrivateCreator, DicomVR.LO, SealCreator));
                item.Dataset.Set(DicomElement.Text(SealKind, DicomVR.LO, RecordViews.SealName(receipt.Seal)));
                if (receipt.SealDetail is { } detail)
                {
                    item.Dataset.Set(DicomElement.Text(SealDetail, DicomVR.LT, detail));
                }

                warnings += receipt.Warnings.Count > 0 ? 1 : 0;
                studyOfAll = studyOfAll is null && stored.Count == 0 ? receipt.StudyInstanceUid : studyOfAll == receipt.StudyInstanceUid ? studyOfAll : null;
                stored.Add(item);
            }
            catch (DicomFormatException)
            {
                failed.Add(Item(null, null, FailureReason, CannotUnderstand));
            }
            catch (TrustedProxy.Policy.RecordWithheldException)
            {
                // Denied by a record-level rule once its header was read (recorded in the decision log); the body was read whole.
                failed.Add(Item(null, null, FailureReason, NotAuthorized));
            }
            catch (UploadRejectedException rejected)
            {
                failed.Add(Item(rejected.SopClassUid, rejected.SopInstanceUid, FailureReason, DataSetDoesNotMatch));
            }
            catch (BackendUnavailableException)
            {
                failed.Add(Item(null, null, FailureReason, OutOfResources));
            }
            catch (InvalidDataException)
            {
                // The part exceeded the per-instance size limit: what is left of the body cannot be trusted.
                failed.Add(Item(null, null, FailureReason, OutOfResources));
                break;
            }
        }

        if (parts == 0)
        {
            return Problem.Result(Problems.ProblemTypes.BadRequest, "the request holds no parts");
        }

        var response = new DicomDataset(DicomEncoding.ExplicitLittle);
        if (studyOfAll is not null && stored.Count > 0)
        {
            response.Set(DicomElement.Text(RetrieveUrl, DicomVR.UR, $"{DicomWebEndpoints.BaseUrl(context)}/studies/{studyOfAll}"));
        }

        if (failed.Count > 0)
        {
            response.Set(DicomElement.Create(FailedSopSequence, new DicomSequence(failed, UndefinedLength: false)));
        }

        if (stored.Count > 0)
        {
            response.Set(DicomElement.Create(ReferencedSopSequence, new DicomSequence(stored, UndefinedLength: false)));
        }

        var status = stored.Count == 0 ? StatusCodes.Status409Conflict : failed.Count > 0 || warnings > 0 ? StatusCodes.Status202Accepted : StatusCodes.Status200OK;
        return Results.Text(System.Text.Encoding.UTF8.GetString(Json(response)), MediaTypes.DicomJson, System.Text.Encoding.UTF8, status);
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "STOW-RS request refused: {Reason}")]
    private static partial void LogRefusedContentType(ILogger logger, string reason);

    private static string InstanceUrl(HttpContext context, UploadReceipt receipt) =>
        $"{DicomWebEndpoints.BaseUrl(context)}/studies/{receipt.StudyInstanceUid}/series/{receipt.SeriesInstanceUid}/instances/{receipt.SopInstanceUid}";

    private static DicomItem Item(string? sopClass, string? sopInstance, DicomTag? reasonTag, ushort reason)
    {
        var item = new DicomDataset(DicomEncoding.ExplicitLittle);
        if (sopClass is not null)
        {
            item.Set(DicomElement.Text(ReferencedSopClassUid, DicomVR.UI, sopClass));
        }

        if (sopInstance is not null)
        {
            item.Set(DicomElement.Text(ReferencedSopInstanceUid, DicomVR.UI, sopInstance));
        }

        if (reasonTag is { } tag)
        {
            item.Set(DicomElement.UInt16(tag, reason, DicomEncoding.ExplicitLittle));
        }

        return new DicomItem(item, UndefinedLength: false);
    }

    private static byte[] Json(DicomDataset dataset)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            DicomJsonWriter.WriteDataset(writer, dataset);
        }

        return buffer.ToArray();
    }
}
