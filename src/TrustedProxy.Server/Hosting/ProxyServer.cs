using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using TrustedProxy.Audit;
using TrustedProxy.Backup;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Database;
using TrustedProxy.Crypto;
using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;
using TrustedProxy.Pseudonymization;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Export;
using TrustedProxy.Records;
using TrustedProxy.Server.Audit;
using TrustedProxy.Server.Backup;
using TrustedProxy.Server.CertificateAuthority;
using TrustedProxy.Server.Dashboard;
using TrustedProxy.Server.DicomWeb;
using TrustedProxy.Server.Health;
using TrustedProxy.Server.ObliviousTransfer;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Telemetry;
using TrustedProxy.Server.Export;
using TrustedProxy.Server.Records;
using TrustedProxy.Server.Tls;
using TrustedProxy.Server.ObliviousRetrieval;
using TrustedProxy.Server.UploadCache;
using TrustedProxy.Storage;
using TrustedProxy.Storage.AzureBlob;
using TrustedProxy.Storage.S3;
using TrustedProxy.UploadCache;
using TrustedProxy.Server.Watermarking;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Hosting;

/// <summary>How to start a proxy: where it lives and what configuration it reads.</summary>
public sealed record ProxyServerSettings
{
    /// <summary>Relative paths in the configuration resolve against this directory.</summary>
    public required string ContentRoot { get; init; }

    /// <summary>The deployer's configuration file (<c>config/appsettings.json</c>); optional.</summary>
    public string? ConfigurationFile { get; init; }

    /// <summary>Values that win over the file and the environment (the command line, tests).</summary>
    public IReadOnlyDictionary<string, string?> Overrides { get; init; } = new Dictionary<string, string?>();

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Log sinks besides the configured ones (tests read what the server logged); the caller disposes them.</summary>
    public IReadOnlyList<ILoggerProvider> LoggerProviders { get; init; } = [];
}

/// <summary>
/// Composes the proxy in one place, in the order a request flows: TLS with client certificates,
/// errors as problem+json, routing, the policy enforcement point, then the endpoints. An upload
/// continues in <see cref="RecordUploader"/>: DICOM reading, encryption, padding, the durable
/// upload cache, and from there <see cref="UploadCacheEngine"/> releases it to the backend.
/// </summary>
public static class ProxyServer
{
    /// <summary>The environment variable that may carry the master key (base64) instead of the key file.</summary>
    public const string MasterKeyVariable = "TPROXY_MASTER_KEY";

    public static async Task<WebApplication> BuildAsync(ProxyServerSettings settings, CancellationToken cancellationToken = default)
    {
        // The host's default appsettings.json files are read once, not watched: watching them puts an
        // inotify watch on every directory under the content root, data directory included, and a
        // thread then wakes for every file an upload writes (4-5 % of the CPU at full ingest). The
        // proxy's own configuration files are not reloaded either (reloadOnChange: false below).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = settings.ContentRoot, Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        if (settings.ConfigurationFile is { } file)
        {
            if (!File.Exists(file))
            {
                throw new InvalidConfigurationException([$"configuration file '{file}' does not exist"]);
            }

            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }

        // What the site declared at `tproxy init` (its read load), over the file, under the environment.
        builder.Configuration.AddJsonFile(Path.Combine(Path.GetFullPath(settings.ContentRoot), DeclaredLoad.FileName), optional: true, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(settings.Overrides);
        foreach (var provider in settings.LoggerProviders)
        {
            builder.Logging.AddProvider(provider);
        }

        var binder = new OptionsBinder(builder.Configuration);
        var paths = binder.Bind<ProxyPathsOptions>("TrustedProxy");
        var server = binder.Bind<ProxyServerOptions>("TrustedProxy:Server");
        var records = binder.Bind<RecordStoreOptions>("TrustedProxy:Records");
        var dicom = binder.Bind<DicomReaderLimits>("TrustedProxy:Dicom");
        var deidentification = binder.Bind<DeidentificationSettings>("TrustedProxy:Deidentification");
        var uploadCache = binder.Bind<UploadCacheOptions>("TrustedProxy:UploadCache");

        // The backup is on wherever it can ride the dummy slots, unless configuration says otherwise;
        // set explicitly on, a configuration it cannot run with is refused below.
        var backup = BackupServiceCollectionExtensions.Resolve(binder.Bind<BackupOptions>("TrustedProxy:Backup"), uploadCache, builder.Configuration["TrustedProxy:Backup:Enabled"] is not null);

        // The slot rate follows the declared write load unless configuration sets it (docs/upload-cache.md, "Sizing").
        var slotRate = new SlotRateOrigin(builder.Configuration["TrustedProxy:UploadCache:SlotsPerSecond"] is not null, backup.Enabled);
        if (!slotRate.Configured && SlotRate.Derive(uploadCache.DeclaredUploadsPerDay, uploadCache.DeclaredUploadMegabytes, uploadCache.BlockSizeBytes, backup.Enabled) > UploadCacheOptions.MaxSlotsPerSecond)
        {
            binder.AddErrors([$"TrustedProxy:UploadCache: the declared write load (DeclaredUploadsPerDay × DeclaredUploadMegabytes) needs more than {UploadCacheOptions.MaxSlotsPerSecond:N0} slots/s; declare less, raise BlockSizeBytes or set SlotsPerSecond"]);
        }
        else
        {
            uploadCache = SlotRate.Apply(uploadCache, slotRate.Configured, builder.Configuration["TrustedProxy:UploadCache:PoolThreshold"] is not null, backup.Enabled);
        }

        var obliviousTransfer = binder.Bind<ObliviousTransferOptions>("TrustedProxy:ObliviousTransfer");
        var obliviousRetrieval = binder.Bind<ObliviousRetrievalOptions>("TrustedProxy:ObliviousRetrieval");
        var watermarking = binder.Bind<WatermarkingOptions>("TrustedProxy:Watermarking");
        var policy = binder.Bind<PolicyOptions>("TrustedProxy:Policy");
        var auditOptions = binder.Bind<AuditLogOptions>("TrustedProxy:Audit");
        var auditWitness = binder.Bind<AuditWitnessOptions>("TrustedProxy:Audit:Witness");
        binder.AddErrors(auditWitness.Validate());
        var dashboard = binder.Bind<DashboardOptions>("TrustedProxy:Dashboard");
        var objectFormat = binder.Bind<ObjectFormatOptions>("TrustedProxy:ObjectFormat");
        var pseudonymization = binder.Bind<PseudonymizationOptions>("TrustedProxy:Pseudonymization");
        var limits = binder.Bind<RequestLimitsOptions>("TrustedProxy:Limits");
        var telemetry = binder.Bind<TelemetryOptions>("TrustedProxy:Telemetry");
        var database = binder.Bind<DatabaseOptions>(DatabaseOptions.Section);
        binder.AddErrors(database.Validate());
        var export = binder.Bind<ExportOptions>("TrustedProxy:Export");
        binder.AddErrors(telemetry.Validate());
        binder.AddErrors(server.Validate());
        binder.AddErrors(uploadCache.Validate());
        binder.AddErrors(BackupServiceCollectionExtensions.Validate(backup, uploadCache));
        binder.AddErrors(deidentification.Validate());
        var reportFontErrors = new List<string>();
        var reportFont = ReportFont.Load(dashboard, settings.ContentRoot, reportFontErrors);
        binder.AddErrors(reportFontErrors);
        var policyDirectory = Path.GetFullPath(Path.Combine(settings.ContentRoot, policy.Directory ?? string.Empty));
        var profiles = deidentification.Profiles.Select(p => p.Name).Append(new DeidentificationProfile().Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        PolicySet? policySet = null;
        if (!string.IsNullOrWhiteSpace(policy.Directory))
        {
            try
            {
                policySet = PolicyLoader.LoadDirectory(policyDirectory, policy, profiles);
            }
            catch (PolicyLoadException invalid)
            {
                binder.AddErrors(invalid.Errors.Select(e => $"TrustedProxy:Policy:Directory: {e}"));
            }
        }

        binder.ThrowIfInvalid();

        var root = settings.ContentRoot;
        var dataDirectory = Path.GetFullPath(Path.Combine(root, paths.DataDirectory));
        var certificates = new CertificateAuthorityPaths(Path.GetFullPath(Path.Combine(root, paths.CertificatesDirectory)));
        // So far only the CA registry follows TrustedProxy:Database; the index stays in SQLite (docs/database.md).
        var registry = CertificateRegistryLocation.From(database);
        var time = settings.Time;

        SecretFile.EnsurePrivateDirectory(dataDirectory);

        // Before anything in the directory is read or repaired (key, audit log, index, recovery):
        // a second proxy on it is refused here, at once. Held until the application is disposed.
        var dataLock = DataDirectoryLock.Acquire(dataDirectory);
        using var releaseOnFailure = new ReleasedOnFailure(dataLock);
        var keyRing = Environment.GetEnvironmentVariable(MasterKeyVariable) is { Length: > 0 } masterKey
            ? ProxyKeyRing.FromBase64(masterKey)
            : ProxyKeyRing.LoadOrCreate(Path.Combine(dataDirectory, "keys", "master.key"));

        // Opened before the CA, whose first-run issuing it records; it verifies the whole log first.
        var httpContext = new HttpContextAccessor();
        var audit = AuditLog.Open(Path.Combine(dataDirectory, "audit"), keyRing, auditOptions, time, new HttpAuditContextSource(httpContext));
        if (pseudonymization.LinkPatientsAcrossOrganisations)
        {
            // Linkage merges hospitals' patients who share an ID; it is a federation's decision, on the record at every start.
            await audit.AppendAsync(AuditEvents.PatientLinkage());
        }

        if (server.AutoInitializeCertificates)
        {
            LocalFederation.Initialize(certificates, server.LocalOrganisation, server.EffectiveHostNames.ToList(), CaPassphrase.ForNewKey(keyRing), issueClients: true, time, audit, registry);
        }
        else if (!certificates.CaExists || !File.Exists(certificates.ServerCertificate))
        {
            throw new InvalidConfigurationException([$"no CA or server certificate in '{certificates.Root}'; run 'tproxy init' or enable TrustedProxy:Server:AutoInitializeCertificates"]);
        }

        var caCertificate = ProxyCertificateAuthority.LoadRootCertificate(certificates);
        var trust = FederationTrust.Of(certificates);
        if (certificates.HasIntermediate)
        {
            // The issuing intermediate must be one the root signed and the validator knows, or the
            // members it issues (and the proxy's own certificate) would be refused at every handshake.
            using var current = X509Certificate2.CreateFromPem(File.ReadAllText(certificates.IntermediateCertificate));
            if (!trust.Intermediates.Any(i => i.RawData.AsSpan().SequenceEqual(current.RawData)))
            {
                throw new InvalidConfigurationException([$"the issuing intermediate '{certificates.IntermediateCertificate}' is not one of the root's intermediates in '{certificates.IntermediatesDirectory}' (missing there, or not signed by the root)"]);
            }
        }

        var serverCertificate = LoadServerCertificate(certificates);
        ProxyCertificateAuthority? authority = CaPassphrase.Resolve(certificates, keys: keyRing) is { } passphrase
            ? ProxyCertificateAuthority.Open(certificates, passphrase, time, audit, registry)
            : null;
        authority?.PublishCrl();

        var selector = new ObjectStoreSelector([new FileSystemObjectStoreProvider(), new AzureBlobObjectStoreProvider(), new S3ObjectStoreProvider()]);
        var storageSection = builder.Configuration.GetSection("TrustedProxy:Storage");
        var store = await selector.CreateAsync(storageSection, root, cancellationToken);
        if (storageSection["ObservationLog"] is { Length: > 0 } observationLog)
        {
            // The operator's own record of exactly what the cloud was shown (docs/privacy.md).
            var sink = new CsvObservationSink(Path.GetFullPath(Path.Combine(root, observationLog)));
            builder.Services.AddSingleton(sink); // disposed (closed) with the application
            store = new ObservedObjectStore(store, sink, time);
        }

        var services = builder.Services;
        services.AddSingleton(_ => dataLock); // a factory, so that the container disposes (releases) it with the application
        services.AddSingleton(time);
        services.AddSingleton(Options.Create(records));
        services.AddSingleton(Options.Create(dicom));
        services.AddSingleton(Options.Create(server));
        services.AddSingleton<PublicAddress>();
        services.AddSingleton(keyRing);
        services.AddSingleton(ObjectMask.From(keyRing));
        services.AddSingleton(store);
        services.AddSingleton(new RecordIndex(Path.Combine(dataDirectory, "proxy.db"), time: time));
        services.AddSingleton(Options.Create(policy));
        services.AddSingleton<PolicyHistory>();
        services.AddSingleton(sp => new PolicyStore(policySet!, policyDirectory, policy, profiles, sp.GetRequiredService<PolicyHistory>(), sp.GetRequiredService<AuditLog>(), time, sp.GetRequiredService<ILogger<PolicyStore>>()));
        services.AddSingleton<IPolicyDecisionPoint, PolicyDecisionPoint>();
        services.AddSingleton<PolicyEnforcer>();
        services.AddHostedService<PolicyWatchService>();
        services.AddSingleton(new StagingArea(Path.Combine(dataDirectory, "staging")));
        services.AddSingleton<LocalStorageSpace>();
        services.AddSingleton(Options.Create(pseudonymization));
        services.AddSingleton(new IdentifierPseudonymizer(keyRing.IdentifierPseudonymKey, pseudonymization.LinkPatientsAcrossOrganisations));
        services.AddSingleton(Options.Create(deidentification));
        services.AddSingleton(DeidentificationKeys.From(keyRing, pseudonymization.LinkPatientsAcrossOrganisations));
        services.AddSingleton<Deidentifier>();
        services.AddSingleton<RecordViews>();
        services.AddSingleton(Options.Create(export));
        services.AddSingleton(_ => new ExportSigner(serverCertificate)); // a factory, so that the container disposes it
        services.AddSingleton(new CaMaterial(caCertificate.ExportCertificatePem() + "\n"));
        services.AddSingleton(new CertificateAuthorityAccess(authority));
        services.AddSingleton(sp => new PublishedRevocationList(
            certificates.Crl, trust, time, sp.GetRequiredService<ILogger<PublishedRevocationList>>(), TimeSpan.FromSeconds(server.CrlGraceSeconds),
            registry.Exists(certificates) ? () => registry.Open(certificates, time).CurrentCrlNumber() : null));
        services.AddHostedService<Server.CertificateAuthority.CrlRefreshService>();
        services.AddSingleton(sp => new ClientCertificateValidator(trust, sp.GetRequiredService<PublishedRevocationList>(), time));
        services.AddSingleton(Options.Create(watermarking));
        services.AddSingleton<RecordWatermarks>();
        services.AddSingleton<LeakTracer>();
        services.AddSingleton<DecisionLog>();
        services.AddSingleton<IHttpContextAccessor>(httpContext);
        services.AddSingleton(Options.Create(auditOptions));
        services.AddSingleton(_ => audit); // a factory, so that the container disposes it (a last checkpoint) with the application
        services.AddHostedService<AuditCheckpointService>();
        services.AddSingleton(auditWitness);
        services.AddSingleton(sp => new AuditWitnessPublisher(audit, AuditWitnesses.From(auditWitness), auditWitness, time, sp.GetRequiredService<ILogger<AuditWitnessPublisher>>()));
        services.AddHostedService<AuditWitnessService>();
        services.AddSingleton(Options.Create(uploadCache));
        services.AddSingleton(slotRate);
        services.AddSingleton(PaddingSchemes.Create(uploadCache));
        services.AddSingleton<BlockIndex>();
        services.AddSingleton<BlockWriter>();
        services.AddBackup(backup, dataDirectory, certificates.Root, uploadCache.BlockSizeBytes, TimeSpan.FromSeconds(auditOptions.LockTimeoutSeconds));
        services.AddHostedService<BackupService>();
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<UploadCacheEngine>(sp, new CryptoRandom()));
        services.AddHostedService<UploadCacheService>();
        services.AddSingleton<RecordUploader>();
        services.AddSingleton(Options.Create(obliviousTransfer));
        services.AddSingleton(Options.Create(obliviousRetrieval with { CoverModelFile = Path.Combine(dataDirectory, "retrieval", "cover-model.json"), ReadAheadDirectory = Path.Combine(dataDirectory, "staging", "scratch") }));
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<GroupReader>(sp, new CryptoRandom()));
        services.AddHostedService<GroupReadService>();
        services.AddSingleton<RecordRelocator>();
        services.AddSingleton<RelocationQueue>();
        services.AddHostedService<RelocationService>();
        services.AddSingleton<OtSessions>();
        services.AddSingleton<RecordReader>();
        services.AddSingleton<RecordDeleter>();
        services.AddSingleton(Options.Create(objectFormat));
        services.AddSingleton<ObjectFormatMigration>();
        services.AddHostedService<ObjectFormatMigrationService>();
        services.AddSingleton<RecordRecovery>();
        services.AddDashboard(dashboard, reportFont);
        services.AddFrameworkLogLimits();
        services.AddRequestLimits(limits);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddProblemDetails();

        // A body or parameter an endpoint cannot bind (malformed JSON, JSON over the body limit, a
        // query value of the wrong type) throws instead of ending in a bare status, so that it is
        // answered as problem+json like every other error (ProblemExceptionHandler).
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddProxyHealthChecks();
        services.AddProxyTelemetry(builder.Logging, telemetry);
        services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "TrustedProxy API";
            document.Info.Description = "A privacy proxy between hospitals and an honest-but-curious cloud. Every call needs a client certificate issued by the proxy's CA.";
            return Task.CompletedTask;
        }));

        builder.WebHost.UseKestrel();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var validator = kestrel.ApplicationServices.GetRequiredService<ClientCertificateValidator>();
            var logger = kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("TrustedProxy.Tls");
            // The chain a member checks the proxy by: the intermediate that issued its certificate (if any), then the root.
            X509Certificate2[] serverChain = trust.IssuerOf(serverCertificate) is { } intermediate ? [intermediate, caCertificate] : [caCertificate];
            MutualTlsListener.Configure(kestrel, server, server.MaxRequestBodyBytes, serverCertificate, serverChain, validator, logger);
        });

        var app = builder.Build();

        // Resolved first so that it is disposed last: the lock is released after everything else is closed.
        app.Services.GetRequiredService<DataDirectoryLock>();
        app.UseExceptionHandler();
        app.UseStatusCodePages(context => context.HttpContext.Response.StatusCode switch
        {
            404 => Problem.Write(context.HttpContext, ProblemTypes.NotFound, "no such endpoint"),
            405 => Problem.Write(context.HttpContext, ProblemTypes.MethodNotAllowed, "this endpoint does not take that method"),
            415 => Problem.Write(context.HttpContext, ProblemTypes.UnsupportedMediaType, "this endpoint does not take that content type"),

            // Nothing of the proxy's own ends with a bare 400 or 413; the framework might.
            400 => Problem.Write(context.HttpContext, ProblemTypes.BadRequest, "the request could not be read"),
            413 => Problem.Write(context.HttpContext, ProblemTypes.PayloadTooLarge, "the request body is larger than the configured limit"),
            _ => Task.CompletedTask,
        });

        // Before routing and the policy: a request over the proxy's limits is not looked at further.
        app.UseMiddleware<RequestSizeLimits>(server);
        app.UseRouting();
        app.UseMiddleware<PolicyEnforcementMiddleware>();

        // After the policy, so that a refused request never takes a place.
        app.UseRateLimiter();
        app.MapRecords();
        app.MapExports();
        app.MapDicomWeb();
        app.MapObliviousTransfer();
        app.MapCertificateAuthority();
        app.MapAudit();
        app.MapAuditLog();
        app.MapPolicy();
        app.MapObjectFormat();
        app.MapTrace();
        app.MapDashboard();
        app.MapProxyHealth();
        app.MapProxyMetrics(telemetry);
        app.MapOpenApi("/openapi/{documentName}.json").RequiresAction(ProxyAction.Discover);

        await app.Services.GetRequiredService<PolicyStore>().InitializeAsync();
        await app.Services.GetRequiredService<RecordRecovery>().RunAsync(cancellationToken);
        releaseOnFailure.Keep();
        return app;
    }

    /// <summary>
    /// The backend and block size as <c>serve</c> would configure them (the configuration file, the
    /// declared load, the environment, the overrides), without the rest of the server: for
    /// <c>tproxy recover</c> and <c>tproxy backup verify</c>. The observation log is not attached.
    /// </summary>
    public static async Task<(IObjectStore Store, int BlockSize)> OpenBackendAsync(ProxyServerSettings settings, CancellationToken cancellationToken = default)
    {
        var configuration = new ConfigurationManager();
        if (settings.ConfigurationFile is { } file)
        {
            if (!File.Exists(file))
            {
                throw new InvalidConfigurationException([$"configuration file '{file}' does not exist"]);
            }

            configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }

        configuration.AddJsonFile(Path.Combine(Path.GetFullPath(settings.ContentRoot), DeclaredLoad.FileName), optional: true, reloadOnChange: false);
        configuration.AddEnvironmentVariables();
        configuration.AddInMemoryCollection(settings.Overrides);
        var binder = new OptionsBinder(configuration);
        var uploadCache = binder.Bind<UploadCacheOptions>("TrustedProxy:UploadCache");
        binder.ThrowIfInvalid();
        var selector = new ObjectStoreSelector([new FileSystemObjectStoreProvider(), new AzureBlobObjectStoreProvider(), new S3ObjectStoreProvider()]);
        var store = await selector.CreateAsync(configuration.GetSection("TrustedProxy:Storage"), settings.ContentRoot, cancellationToken);
        return (store, uploadCache.BlockSizeBytes);
    }

    /// <summary>The addresses the server actually listens on (with real ports when 0 was asked).</summary>
    public static IReadOnlyList<Uri> ListeningAddresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.Select(a => new Uri(a.Replace("[::]", "localhost", StringComparison.Ordinal))).ToList() ?? [];

    private static X509Certificate2 LoadServerCertificate(CertificateAuthorityPaths paths)
    {
        // Reading through SecretFile refuses a key that others can read.
        var key = SecretFile.ReadText(paths.ServerPrivateKey);
        using var pem = X509Certificate2.CreateFromPem(File.ReadAllText(paths.ServerCertificate), key);

        // Re-import so the key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null);
    }
}
