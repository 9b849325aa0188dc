using System.Diagnostics;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>
/// Runs a Python script with Debian's interpreter, which has pydicom, NumPy and Pillow (tools/test.sh
/// installs them): independent readers and writers of DICOM pixels and PNG files.
/// </summary>
internal static class PythonOracle
{
    public static string Run(string script, params string[] arguments)
    {
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"the Python oracle failed ({python}; pydicom, numpy and PIL are needed: tools/test.sh installs them): {stderr.Result}");
        }

        return stdout.Result;
    }
}
