using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Tests.Hosting;

public sealed class LogTextTests
{
    [Theory]
    [InlineData("plain text, unchanged", "plain text, unchanged")]
    [InlineData("a\r\nFAKE 2026 entry", @"a\r\nFAKE 2026 entry")]
    [InlineData("tab\tnul\0esc\u001bdel\u007fc1\u0085", @"tab\tnul\u0000esc\u001bdel\u007fc1\u0085")]
    [InlineData("line\u2028para\u2029", @"line\u2028para\u2029")]
    [InlineData("evil\u202Etxt.exe", @"evil\u202etxt.exe")]
    [InlineData(@"already \r escaped", @"already \\r escaped")]
    public void Escape_LeavesNoControlCharacterALogLineCouldBeForgedWith(string raw, string logged)
    {
        var escaped = LogText.Escape(raw);

        Assert.Equal(logged, escaped);
        Assert.DoesNotContain(escaped, c => char.IsControl(c) || c is '\u2028' or '\u2029' or '\u202E');
    }

    [Fact]
    public void FrameworkCategoriesThatLogRawPaths_StayQuiet_WhateverTheConfigurationAsks()
    {
        var options = new LoggerFilterOptions { MinLevel = LogLevel.Trace };
        options.Rules.Add(new LoggerFilterRule(null, null, LogLevel.Warning, null));
        options.Rules.Add(new LoggerFilterRule("Console", "Microsoft.AspNetCore", LogLevel.Debug, null));
        options.Rules.Add(new LoggerFilterRule(null, "Microsoft.AspNetCore.Routing.Matching", LogLevel.Trace, null));
        var services = new ServiceCollection().AddFrameworkLogLimits();
        services.AddSingleton<IConfigureOptions<LoggerFilterOptions>>(new ConfigureOptions<LoggerFilterOptions>(o =>
        {
            foreach (var rule in options.Rules)
            {
                o.Rules.Add(rule);
            }
        }));
        using var provider = services.BuildServiceProvider();

        var rules = provider.GetRequiredService<IOptions<LoggerFilterOptions>>().Value.Rules;

        // For the console (a provider-specific Debug for all of ASP.NET Core), and for the rest.
        Assert.Contains(rules, r => r.ProviderName == "Console" && r.CategoryName == "Microsoft.AspNetCore.Hosting.Diagnostics" && r.LogLevel == LogLevel.None);
        Assert.Contains(rules, r => r.ProviderName == "Console" && r.CategoryName == "Microsoft.AspNetCore.Routing" && r.LogLevel == LogLevel.Information);
        Assert.Contains(rules, r => r.ProviderName is null && r.CategoryName == "Microsoft.AspNetCore.Hosting.Diagnostics" && r.LogLevel == LogLevel.None);

        // Where the configuration is quieter than the limit, it stays as quiet.
        Assert.Contains(rules, r => r.ProviderName is null && r.CategoryName == "Microsoft.AspNetCore.Routing" && r.LogLevel == LogLevel.Warning);

        // A more specific rule under a limited category is raised to the limit.
        Assert.Contains(rules, r => r.CategoryName == "Microsoft.AspNetCore.Routing.Matching" && r.LogLevel == LogLevel.Information);
        Assert.DoesNotContain(rules, r => r.CategoryName == "Microsoft.AspNetCore.Routing.Matching" && r.LogLevel < LogLevel.Information);
    }
}
