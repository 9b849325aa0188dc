using TrustedProxy.Server.Dashboard;

namespace TrustedProxy.Tests.Dashboard;

public sealed class HtmlBuilderTests
{
    [Fact]
    public void TextAndAttributeValues_AreEncoded_SoThatNoValueBecomesMarkup()
    {
        var html = new HtmlBuilder();
        using (html.Open("p", ("title", "\"><script>alert(1)</script>")))
        {
            html.Text("<script>alert('x') & </script>");
        }

        html.Element("a", "St Olav's & Co", ("href", "/dashboard/decisions?organisation=a&role=b"));

        var text = html.ToString();
        Assert.DoesNotContain("<script", text);
        Assert.Contains("<p title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">&lt;script&gt;alert(&#x27;x&#x27;) &amp; &lt;/script&gt;</p>", text);
        Assert.Contains("<a href=\"/dashboard/decisions?organisation=a&amp;role=b\">St Olav&#x27;s &amp; Co</a>", text);
    }

    [Fact]
    public void ANonLatinName_StaysReadableText()
    {
        var html = new HtmlBuilder().Element("td", "Ullevål sykehus, Больница");

        Assert.EndsWith("<td>Ullevål sykehus, Больница</td>", html.ToString());
    }

    [Fact]
    public void ANullAttribute_IsLeftOut_AndElementsCloseInOrder()
    {
        var html = new HtmlBuilder();
        using (html.Open("ul"))
        using (html.Open("li", ("aria-current", null)))
        {
            html.Void("input", ("type", "hidden"), ("value", string.Empty));
        }

        Assert.EndsWith("<ul><li><input type=\"hidden\" value=\"\"></li></ul>", html.ToString());
    }

    [Theory]
    [InlineData("script onload")]
    [InlineData("P")]
    [InlineData("a\"")]
    [InlineData("")]
    public void ANameThatIsNotALowercaseWord_IsRefused(string name)
    {
        Assert.Throws<ArgumentException>(() => new HtmlBuilder().Element(name, "x"));
        Assert.Throws<ArgumentException>(() => new HtmlBuilder().Element("p", "x", (name, "v")));
    }
}
