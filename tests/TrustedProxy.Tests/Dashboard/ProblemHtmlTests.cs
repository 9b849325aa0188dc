using Microsoft.AspNetCore.Http;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Tests.Dashboard;

/// <summary>Which callers get a problem as a page: browsers, not API clients.</summary>
public sealed class ProblemHtmlTests
{
    [Theory]
    [InlineData("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", true)]
    [InlineData("text/html", true)]
    [InlineData("application/json, text/html;q=0.5", false)]
    [InlineData("application/problem+json", false)]
    [InlineData("*/*", false)]
    [InlineData("application/dicom", false)]
    [InlineData("text/html;q=0", false)]
    [InlineData("not a media type", false)]
    [InlineData(null, false)]
    public void AProblemIsAPage_OnlyWhenTheAcceptHeaderPrefersHtml(string? accept, bool page)
    {
        var context = new DefaultHttpContext();
        if (accept is not null)
        {
            context.Request.Headers.Accept = accept;
        }

        Assert.Equal(page, ProblemHtml.IsPreferredBy(context.Request));
    }
}
