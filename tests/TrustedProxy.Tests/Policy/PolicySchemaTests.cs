using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Policy;
using YamlDotNet.RepresentationModel;

namespace TrustedProxy.Tests.Policy;

/// <summary>
/// The published JSON Schema (config/policies/policy.schema.json), the loader and the shipped files
/// say the same thing: the same keys in every kind of mapping, the same words in every enumeration,
/// every key the loader accepts is one it reads, and the shipped files use nothing else.
/// </summary>
public sealed class PolicySchemaTests
{
    private static readonly JsonElement Schema = JsonDocument.Parse(File.ReadAllText(Repository.Path("config", "policies", "policy.schema.json"))).RootElement;

    private static readonly string[] Kinds = [PolicySchema.Rule, PolicySchema.Condition, PolicySchema.Time, PolicySchema.Record, PolicySchema.StudyDate, PolicySchema.Obligations, PolicySchema.Consent, PolicySchema.WithheldFrom];

    public static TheoryData<string> KindNames => [PolicySchema.File, .. Kinds];

    [Theory]
    [MemberData(nameof(KindNames))]
    public void TheSchemaAndTheLoader_AcceptTheSameKeys_AndNothingElse(string kind)
    {
        var definition = kind == PolicySchema.File ? Schema : Schema.GetProperty("$defs").GetProperty(kind);

        Assert.Equal(PolicySchema.Keys[kind].Order(), definition.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.False(definition.GetProperty("additionalProperties").GetBoolean(), $"{kind} allows other keys");
    }

    [Fact]
    public void TheSchemaAndTheLoader_KnowTheSameWords()
    {
        var definitions = Schema.GetProperty("$defs");
        foreach (var (name, words) in PolicySchema.Enumerations)
        {
            Assert.Equal(words, definitions.GetProperty(name).GetProperty("enum").EnumerateArray().Select(e => e.GetString()!));
        }

        Assert.Equal(PolicySchema.FormatVersion, Schema.GetProperty("properties").GetProperty("version").GetProperty("const").GetInt32());
        Assert.Equal(Kinds.Concat(PolicySchema.Enumerations.Keys).Order(), definitions.EnumerateObject().Select(d => d.Name).Where(n => n is not ("text" or "id" or "names" or "date" or "clock")).Order());
    }

    public static TheoryData<string, string> EveryKey
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var (kind, keys) in PolicySchema.Keys)
            {
                foreach (var key in keys)
                {
                    data.Add(kind, key);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(EveryKey))]
    public void EveryKeyTheLoaderAccepts_IsOneItReadsAndChecks(string kind, string key)
    {
        var (file, target) = Minimal(kind);
        Assert.NotNull(PolicyLoader.Load([new PolicyFile("a.yaml", file.ToJsonString())]));

        // A value no key accepts (a list holding a mapping): refused only if the loader reads the key.
        target[key] = new JsonArray(new JsonObject { ["x"] = 1 });

        Assert.Throws<PolicyLoadException>(() => PolicyLoader.Load([new PolicyFile("a.yaml", file.ToJsonString())]));
    }

    [Fact]
    public void TheShippedFiles_UseOnlyTheSchemasKeys()
    {
        var checkedMappings = 0;
        foreach (var path in Directory.GetFiles(Repository.Path("config", "policies"), "*.yaml"))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(path)));
            Walk(stream.Documents.Single().RootNode, PolicySchema.File, Path.GetFileName(path), ref checkedMappings);
        }

        Assert.True(checkedMappings > 40, $"only {checkedMappings} mappings checked");
    }

    private static void Walk(YamlNode node, string kind, string file, ref int count)
    {
        var map = Assert.IsType<YamlMappingNode>(node);
        var allowed = kind == PolicySchema.File ? Schema : Schema.GetProperty("$defs").GetProperty(kind);
        count++;
        foreach (var (keyNode, value) in map.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value!;
            Assert.True(allowed.GetProperty("properties").TryGetProperty(key, out _), $"{file}:{keyNode.Start.Line}: '{key}' is not in the schema's {kind}");
            var child = (kind, key) switch
            {
                (PolicySchema.File, "rules") => PolicySchema.Rule,
                (PolicySchema.File, "consent") => PolicySchema.Consent,
                (_, "unless") => PolicySchema.Condition,
                (_, "time") => PolicySchema.Time,
                (_, "record") => PolicySchema.Record,
                (PolicySchema.Record, "studyDate") => PolicySchema.StudyDate,
                (_, "obligations") => PolicySchema.Obligations,
                (_, "withheldFrom") => PolicySchema.WithheldFrom,
                _ => null,
            };
            if (child is null)
            {
                continue;
            }

            foreach (var item in value is YamlSequenceNode sequence ? sequence.Children : [value])
            {
                Walk(item, child, file, ref count);
            }
        }
    }

    // A valid file and, inside it, the mapping of the kind under test.
    private static (JsonObject File, JsonObject Target) Minimal(string kind)
    {
        JsonObject Rule(string effect) => new() { ["id"] = "r", ["effect"] = effect };
        JsonObject RuleFile(JsonObject rule) => new() { ["version"] = 1, ["rules"] = new JsonArray(rule) };
        var consent = new JsonObject { ["id"] = "c", ["patient"] = "0a1b2c3d4e5f60718293a4b5c6d7e8f9" };
        switch (kind)
        {
            case PolicySchema.File:
                var file = RuleFile(Rule("permit"));
                return (file, file);
            case PolicySchema.Rule:
                var rule = Rule("permit");
                return (RuleFile(rule), rule);
            case PolicySchema.Condition:
                var unless = new JsonObject { ["roles"] = new JsonArray("consumer") };
                return (RuleFile(new JsonObject { ["id"] = "r", ["effect"] = "permit", ["unless"] = unless }), unless);
            case PolicySchema.Time:
                var time = new JsonObject { ["days"] = new JsonArray("mon") };
                return (RuleFile(new JsonObject { ["id"] = "r", ["effect"] = "permit", ["time"] = time }), time);
            case PolicySchema.Record:
                var record = new JsonObject { ["origin"] = "own" };
                return (RuleFile(new JsonObject { ["id"] = "r", ["effect"] = "deny", ["record"] = record }), record);
            case PolicySchema.StudyDate:
                var date = new JsonObject { ["from"] = "2020-01-01" };
                return (RuleFile(new JsonObject { ["id"] = "r", ["effect"] = "deny", ["record"] = new JsonObject { ["studyDate"] = date } }), date);
            case PolicySchema.Obligations:
                var obligations = new JsonObject { ["fingerprint"] = true };
                return (RuleFile(new JsonObject { ["id"] = "r", ["effect"] = "oblige", ["obligations"] = obligations }), obligations);
            case PolicySchema.Consent:
                return (new JsonObject { ["version"] = 1, ["consent"] = new JsonArray(consent) }, consent);
            default:
                var withheld = new JsonObject { ["purposes"] = new JsonArray("research") };
                consent["withheldFrom"] = withheld;
                return (new JsonObject { ["version"] = 1, ["consent"] = new JsonArray(consent) }, withheld);
        }
    }
}
