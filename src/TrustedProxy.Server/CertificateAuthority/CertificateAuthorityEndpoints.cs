using Microsoft.Extensions.Options;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Hosting;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.CertificateAuthority;

/// <summary>A request to issue a certificate: either sign <see cref="CsrPem"/>, or generate a key pair and return it as PKCS#12 protected by <see cref="Pkcs12Password"/>.</summary>
public sealed record IssueCertificateRequest(string Organisation, string Role, int? ValidityDays, string? CsrPem, string? Pkcs12Password);

/// <summary>A request to revoke; the reason is one of <see cref="RevocationReasons.Names"/>.</summary>
public sealed record RevokeCertificateRequest(string? Reason);

/// <summary>
/// The CA over HTTPS. Public material (the CA certificate and the CRL, at the documented URLs
/// <c>/ca/certificate</c> and <c>/ca/crl</c>) is readable by every member; issuing, listing and
/// revoking is for administrators.
/// </summary>
internal static class CertificateAuthorityEndpoints
{
    public const int MinPkcs12PasswordLength = 12;

    public static IEndpointRouteBuilder MapCertificateAuthority(this IEndpointRouteBuilder app)
    {
        app.MapGet("/ca/certificate", (CaMaterial material) => TypedResults.Text(material.CaCertificatePem, "application/x-pem-file"))
            .RequiresAction(ProxyAction.Discover).WithTags("Certificate authority").WithSummary("The federation's root CA certificate (PEM)");
        app.MapGet("/ca/crl", (PublishedRevocationList crl) => crl.CurrentDer is { } der
                ? Results.File(der, "application/pkix-crl", "ca.crl")
                : Problem.Result(ProblemTypes.NotFound, "no valid CRL is published"))
            .RequiresAction(ProxyAction.Discover).WithTags("Certificate authority").WithSummary("The current certificate revocation list (DER)");

        var admin = app.MapGroup("/api/v1/ca/certificates").WithTags("Certificate authority");
        admin.MapGet("/", (CertificateAuthorityAccess ca) => Guard(() => TypedResults.Ok(ca.Use(a => a.List()))))
            .RequiresAction(ProxyAction.Administer).WithSummary("Every certificate the CA issued, with revocation status");
        admin.MapPost("/", (IssueCertificateRequest request, CertificateAuthorityAccess ca, IOptions<ProxyServerOptions> server) => Guard(() => Issue(request, ca, server.Value)))
            .RequiresAction(ProxyAction.Administer).WithSummary("Issue a client certificate (sign a CSR, or generate a PKCS#12)");
        admin.MapPost("/{serial}/revoke", (string serial, RevokeCertificateRequest? request, CertificateAuthorityAccess ca) => Guard(() => Revoke(serial, request, ca)))
            .RequiresAction(ProxyAction.Administer).WithSummary("Revoke a certificate; the new CRL applies at once");
        return app;
    }

    private static IResult Issue(IssueCertificateRequest request, CertificateAuthorityAccess ca, ProxyServerOptions server)
    {
        if (!ProxyRoles.TryParse(request.Role, out var role))
        {
            return Problem.Result(ProblemTypes.CaRequestRefused, $"role must be one of: {string.Join(", ", ProxyRoles.Names)}");
        }

        var validity = TimeSpan.FromDays(request.ValidityDays ?? 365);
        if (!string.IsNullOrWhiteSpace(request.CsrPem))
        {
            using var signed = ca.Use(a => a.SignRequest(request.CsrPem, request.Organisation, role, validity));
            return TypedResults.Created(
                $"/api/v1/ca/certificates/{CertificateSerial.Of(signed)}",
                new IssuedCertificate(CertificateSerial.Of(signed), request.Organisation, ProxyRoles.ToName(role), signed.NotAfter.ToUniversalTime(), signed.ExportCertificatePem() + "\n", null));
        }

        // Another organisation's private key is made on its side (a CSR); the proxy makes keys only for
        // its own organisation, unless a site decides otherwise.
        if (!server.IssueKeysToOtherOrganisations && !string.Equals(request.Organisation, server.LocalOrganisation, StringComparison.Ordinal))
        {
            return Problem.Result(ProblemTypes.CaRequestRefused, $"send a csrPem for '{request.Organisation}': the proxy makes key pairs only for its own organisation ('{server.LocalOrganisation}'); another organisation keeps its private key on its side (TrustedProxy:Server:IssueKeysToOtherOrganisations allows it)");
        }

        if (request.Pkcs12Password is not { Length: >= MinPkcs12PasswordLength })
        {
            return Problem.Result(ProblemTypes.CaRequestRefused, $"send a csrPem, or a pkcs12Password of at least {MinPkcs12PasswordLength} characters to protect the generated key");
        }

        using var credential = ca.Use(a => a.IssueClient(request.Organisation, role, validity));
        return TypedResults.Created(
            $"/api/v1/ca/certificates/{credential.Serial}",
            new IssuedCertificate(credential.Serial, request.Organisation, ProxyRoles.ToName(role), credential.Certificate.NotAfter.ToUniversalTime(), credential.CertificatePem, Convert.ToBase64String(credential.ExportPkcs12(request.Pkcs12Password))));
    }

    private static IResult Revoke(string serial, RevokeCertificateRequest? request, CertificateAuthorityAccess ca)
    {
        if (!RevocationReasons.TryParse(request?.Reason, out var reason))
        {
            return Problem.Result(ProblemTypes.CaRequestRefused, $"reason must be one of: {string.Join(", ", RevocationReasons.Names)}");
        }

        string normalized;
        try
        {
            normalized = CertificateSerial.Normalize(serial);
        }
        catch (CertificateAuthorityException ex)
        {
            return Problem.Result(ProblemTypes.CaRequestRefused, ex.Message);
        }

        if (ca.Use(a => a.List()).All(c => c.Serial != normalized))
        {
            return Problem.Result(ProblemTypes.CertificateNotFound, $"no certificate {normalized} was issued by this CA");
        }

        var changed = ca.Use(a => a.Revoke(normalized, reason));
        return TypedResults.Ok(new { serial = normalized, revoked = true, alreadyRevoked = !changed, reason = RevocationReasons.ToName(reason) });
    }

    private static IResult Guard(Func<IResult> operation)
    {
        try
        {
            return operation();
        }
        catch (CaKeyUnavailableException)
        {
            return Problem.Result(ProblemTypes.CaKeyUnavailable, $"start the server with {CaPassphrase.EnvironmentVariable} set or the CA key file present to manage certificates over the API");
        }
    }
}

/// <summary>The CA's public certificate as served to members.</summary>
internal sealed record CaMaterial(string CaCertificatePem);
