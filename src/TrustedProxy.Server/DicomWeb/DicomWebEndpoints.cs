using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.Records;
using TrustedProxy.Server.Hosting;
using TrustedProxy.Server.Policy;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.DicomWeb;

/// <summary>DICOMweb (PS3.18) under /dicomweb, with the same mutual TLS, policy and views as the records API.</summary>
internal static class DicomWebEndpoints
{
    public const string Prefix = "/dicomweb";

    /// <summary>The base of Retrieve URLs: the configured public address, never the request's Host header.</summary>
    public static string BaseUrl(HttpContext context) => context.RequestServices.GetRequiredService<PublicAddress>().Base + Prefix;

    public static IEndpointRouteBuilder MapDicomWeb(this IEndpointRouteBuilder app)
    {
        var web = app.MapGroup(Prefix).WithTags("DICOMweb");

        // STOW-RS
        web.MapPost("/studies", (HttpContext c, RecordUploader u, AuditLog a, IOptions<RecordStoreOptions> o, ILoggerFactory l) => StowRs.StoreAsync(c, null, u, a, o, l.CreateLogger("TrustedProxy.DicomWeb")))
            .RequiresAction(ProxyAction.Upload).WithSummary("STOW-RS: store instances");
        web.MapPost("/studies/{study}", (HttpContext c, string study, RecordUploader u, AuditLog a, IOptions<RecordStoreOptions> o, ILoggerFactory l) => StowRs.StoreAsync(c, study, u, a, o, l.CreateLogger("TrustedProxy.DicomWeb")))
            .RequiresAction(ProxyAction.Upload).WithSummary("STOW-RS: store instances of one study");

        // QIDO-RS
        web.MapGet("/studies", (HttpContext c, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Study, null, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search studies");
        web.MapGet("/series", (HttpContext c, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Series, null, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search series");
        web.MapGet("/instances", (HttpContext c, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Instance, null, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search instances");
        web.MapGet("/studies/{study}/series", (HttpContext c, string study, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Series, study, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search a study's series");
        web.MapGet("/studies/{study}/instances", (HttpContext c, string study, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Instance, study, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search a study's instances");
        web.MapGet("/studies/{study}/series/{series}/instances", (HttpContext c, string study, string series, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => QidoRs.SearchAsync(c, QidoRs.Level.Instance, study, series, i, v, p, o, po))
            .RequiresAction(ProxyAction.Search).WithSummary("QIDO-RS: search a series' instances");

        // WADO-RS
        web.MapGet("/studies/{study}", (HttpContext c, string study, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.RetrieveAsync(c, study, null, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: retrieve a study");
        web.MapGet("/studies/{study}/series/{series}", (HttpContext c, string study, string series, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.RetrieveAsync(c, study, series, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: retrieve a series");
        web.MapGet("/studies/{study}/series/{series}/instances/{instance}", (HttpContext c, string study, string series, string instance, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.RetrieveAsync(c, study, series, instance, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: retrieve an instance");
        web.MapGet("/studies/{study}/metadata", (HttpContext c, string study, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.MetadataAsync(c, study, null, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: a study's metadata");
        web.MapGet("/studies/{study}/series/{series}/metadata", (HttpContext c, string study, string series, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.MetadataAsync(c, study, series, null, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: a series' metadata");
        web.MapGet("/studies/{study}/series/{series}/instances/{instance}/metadata", (HttpContext c, string study, string series, string instance, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po) => WadoRs.MetadataAsync(c, study, series, instance, i, v, p, o, po))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: an instance's metadata");
        web.MapGet("/studies/{study}/series/{series}/instances/{instance}/rendered", (HttpContext c, string study, string series, string instance, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po, IOptions<DicomReaderLimits> l, IOptions<WatermarkingOptions> w) => WadoRs.RenderedAsync(c, study, series, instance, null, i, v, p, o, po, l, w))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: an instance's first frame as PNG");
        web.MapGet("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered", (HttpContext c, string study, string series, string instance, string frames, RecordIndex i, RecordViews v, IdentifierPseudonymizer p, IOptions<RecordStoreOptions> o, IOptions<PolicyOptions> po, IOptions<DicomReaderLimits> l, IOptions<WatermarkingOptions> w) => WadoRs.RenderedAsync(c, study, series, instance, frames, i, v, p, o, po, l, w))
            .RequiresAction(ProxyAction.Retrieve).WithSummary("WADO-RS: a frame as PNG");
        return app;
    }
}
