using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrustedProxy.Testing;

/// <summary>
/// pydicom's test corpus as Debian's python3-pydicom installs it, with pydicom itself as the
/// oracle: every fact the tests compare against is read from the files by pydicom at test time.
/// </summary>
public static class DicomCorpus
{
    /// <summary>Overrides where the corpus is looked for.</summary>
    public const string EnvironmentVariable = "TPROXY_DICOM_CORPUS";

    private const string DebianLocation = "/usr/lib/python3/dist-packages/pydicom/data";
    private static readonly Lazy<IReadOnlyList<CorpusFile>> Oracle = new(RunOracle);

    public static string DataDirectory
    {
        get
        {
            var directory = Environment.GetEnvironmentVariable(EnvironmentVariable) ?? DebianLocation;
            if (!Directory.Exists(Path.Combine(directory, "test_files")))
            {
                throw new InvalidOperationException($"pydicom's test corpus is not at '{directory}': install Debian's python3-pydicom (the README's test command does this) or set {EnvironmentVariable}");
            }

            return directory;
        }
    }

    public static string TestFiles => Path.Combine(DataDirectory, "test_files");

    public static string CharsetFiles => Path.Combine(DataDirectory, "charset_files");

    /// <summary>Every file under test_files and charset_files (recursively; text, JSON and archives left out), with what pydicom makes of it.</summary>
    public static IReadOnlyList<CorpusFile> Files => Oracle.Value;

    /// <summary>Files pydicom reads completely and that have the Part 10 preamble and meta information.</summary>
    public static IEnumerable<CorpusFile> WellFormedPart10 => Files.Where(f => f.PydicomReads && f.HasPreamble && f.TransferSyntaxUid is not null && !KnownBroken.Contains(f.Name));

    /// <summary>Files the corpus ships as deliberately broken (pydicom reads some of them lazily, never completely).</summary>
    public static IReadOnlySet<string> KnownBroken { get; } = new HashSet<string>
    {
        "MR_truncated.dcm", "rtplan_truncated.dcm", "no_meta.dcm", "ExplVR_BigEndNoMeta.dcm",
        "ExplVR_LitEndNoMeta.dcm", "meta_missing_tsyntax.dcm", "rtstruct.dcm",
    };

    public static CorpusFile Get(string name) => Files.Single(f => f.Name == name);

    private static IReadOnlyList<CorpusFile> RunOracle()
    {
        const string script = """
            import glob, json, os, sys, warnings
            warnings.simplefilter("ignore")
            import pydicom
            from pydicom.valuerep import PersonName
            root = sys.argv[1]
            out = []
            def texts(ds, acc):
                for elem in ds.iterall():
                    if elem.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV"):
                        continue
                    vals = elem.value if isinstance(elem.value, (list, tuple, pydicom.multival.MultiValue)) else [elem.value]
                    for v in vals:
                        if v is None:
                            continue
                        s = str(v).strip()
                        if s:
                            acc.add(s)
            paths = []
            for folder in ("test_files", "charset_files"):
                for directory, _, names in os.walk(os.path.join(root, folder)):
                    for name in names:
                        if not name.endswith((".dump", ".json", ".txt", ".gz", ".py", ".bz2", ".zip")):
                            paths.append(os.path.join(directory, name))
            for path in sorted(paths):
                    folder = os.path.relpath(os.path.dirname(path), root)
                    with open(path, "rb") as f:
                        head = f.read(132)
                    entry = {"path": path, "name": os.path.basename(path), "folder": folder, "hasPreamble": head[128:132] == b"DICM"}
                    try:
                        ds = pydicom.dcmread(path)
                        acc = set()
                        texts(ds, acc)
                        if "PixelData" in ds:
                            len(ds.PixelData)
                        meta = getattr(ds, "file_meta", None)
                        entry.update({
                            "pydicomReads": True,
                            "transferSyntaxUid": str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None,
                            "patientId": str(ds.get("PatientID", "")) or None,
                            "studyInstanceUid": str(ds.get("StudyInstanceUID", "")) or None,
                            "seriesInstanceUid": str(ds.get("SeriesInstanceUID", "")) or None,
                            "sopInstanceUid": str(ds.get("SOPInstanceUID", "")) or None,
                            "modality": str(ds.get("Modality", "")) or None,
                            "studyDate": str(ds.get("StudyDate", "")) or None,
                            "textValues": sorted(acc),
                            "personNames": ["\\".join(str(v) for v in e.value) if isinstance(e.value, pydicom.multival.MultiValue) else str(e.value) for e in ds.iterall() if e.VR == "PN" and e.value not in (None, "")],
                        })
                    except Exception as e:
                        entry.update({"pydicomReads": False, "error": type(e).__name__ + ": " + str(e)[:200], "textValues": []})
                    out.append(entry)
            json.dump(out, sys.stdout)
            """;

        // Debian's own interpreter: the one python3-pydicom is installed for.
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(DataDirectory);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"pydicom could not be run ({python}): {stderr.Result}");
        }

        return JsonSerializer.Deserialize<List<CorpusFile>>(stdout.Result, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    }
}

/// <summary>One corpus file and pydicom's reading of it.</summary>
public sealed record CorpusFile
{
    public required string Path { get; init; }

    public required string Name { get; init; }

    public required string Folder { get; init; }

    public bool HasPreamble { get; init; }

    public bool PydicomReads { get; init; }

    public string? Error { get; init; }

    public string? TransferSyntaxUid { get; init; }

    public string? PatientId { get; init; }

    public string? StudyInstanceUid { get; init; }

    public string? SeriesInstanceUid { get; init; }

    public string? SopInstanceUid { get; init; }

    public string? Modality { get; init; }

    public string? StudyDate { get; init; }

    /// <summary>Every text value of the file's data set, sequences included, as pydicom decodes them.</summary>
    public IReadOnlyList<string> TextValues { get; init; } = [];

    /// <summary>Every non-empty person name, depth first in file order, decoded by pydicom with the file's character sets.</summary>
    public IReadOnlyList<string> PersonNames { get; init; } = [];

    public bool IsCompressed => TransferSyntaxUid is not null && TransferSyntaxUid is not ("1.2.840.10008.1.2" or "1.2.840.10008.1.2.1" or "1.2.840.10008.1.2.2" or "1.2.840.10008.1.2.1.99");

    public override string ToString() => $"{Folder}/{Name}";
}
