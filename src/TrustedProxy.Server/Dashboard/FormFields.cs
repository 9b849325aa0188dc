namespace TrustedProxy.Server.Dashboard;

/// <summary>Labelled form controls, so that every field is named for screen readers and for the browser test alike.</summary>
internal static class FormFields
{
    public static void Input(HtmlBuilder html, string label, string name, string? value, string type = "text", string? list = null, int? maxLength = null)
    {
        using (html.Open("label"))
        {
            html.Element("span", label);
            html.Void("input", ("type", type), ("name", name), ("value", value), ("list", list), ("maxlength", maxLength?.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>A pick list with "any" first (the empty value).</summary>
    public static void Select(HtmlBuilder html, string label, string name, IEnumerable<string> options, string? selected, string anyLabel = "any")
    {
        using (html.Open("label"))
        {
            html.Element("span", label);
            using (html.Open("select", ("name", name)))
            {
                html.Element("option", anyLabel, ("value", string.Empty));
                foreach (var option in options)
                {
                    html.Element("option", option, ("value", option), ("selected", option == selected ? "selected" : null));
                }
            }
        }
    }

    /// <summary>Suggestions for a text input (its <c>list</c> attribute names the id).</summary>
    public static void DataList(HtmlBuilder html, string id, IEnumerable<string> values)
    {
        using (html.Open("datalist", ("id", id)))
        {
            foreach (var value in values)
            {
                html.Void("option", ("value", value));
            }
        }
    }
}
