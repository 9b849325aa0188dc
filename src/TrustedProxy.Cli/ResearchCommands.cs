using System.CommandLine;
using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Dicom;
using TrustedProxy.Watermarking;
using TrustedProxy.Watermarking.Research;

namespace TrustedProxy.Cli;

/// <summary>
/// Research-only tools, kept apart from everything that protects records: the chaos-based image
/// cipher of the source papers, for exporting images to study (docs/chaos-cipher.md). Not for
/// protection; the proxy protects records with AES-256-GCM.
/// </summary>
internal static class ResearchCommands
{
    public static Command Create()
    {
        var research = new Command("research", "Research only, not for protection: the chaos-based image cipher of the source papers (docs/chaos-cipher.md)");
        research.Subcommands.Add(Chaos("chaos-encrypt", encrypt: true));
        research.Subcommands.Add(Chaos("chaos-decrypt", encrypt: false));
        return research;
    }

    private static Command Chaos(string name, bool encrypt)
    {
        var key = new Option<string>("--key") { Description = "A file of 32 key bytes; chaos-encrypt creates it (owner-only) if missing", Required = true };
        var input = new Argument<string>("input") { Description = "A DICOM file with native pixel data" };
        var output = new Argument<string>("output") { Description = "Where to write the copy with its pixels " + (encrypt ? "scrambled" : "restored") };
        var command = new Command(name, encrypt
            ? "RESEARCH ONLY, NOT FOR PROTECTION: permute and diffuse the stored pixel values with a logistic-map key stream"
            : "Undo chaos-encrypt with the same key")
        { key, input, output };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var keyPath = parse.GetValue(key)!;
            var keyBytes = LoadKey(keyPath, create: encrypt);
            DicomFile file;
            try
            {
                file = await DicomFile.ReadAsync(parse.GetValue(input)!, cancellationToken: cancellationToken);
            }
            catch (Exception ex) when (ex is DicomFormatException or IOException)
            {
                throw new CliException($"cannot read {parse.GetValue(input)}: {ex.Message}");
            }

            if (!PixelImage.TryFromDicom(file, out var image, out var refusal))
            {
                throw new CliException($"{parse.GetValue(input)}: {refusal!.Message}");
            }

            using var cipher = new ChaoticImageCipher(keyBytes);
            var pixels = encrypt ? cipher.EncryptPixelData(image) : cipher.DecryptPixelData(image);
            var element = file.Dataset.Find(DicomTag.PixelData)!;
            file.Dataset.Set(DicomElement.Create(DicomTag.PixelData, element.VR, pixels));
            await using (var stream = File.Create(parse.GetValue(output)!))
            {
                await file.WriteAsync(stream, cancellationToken);
            }

            if (encrypt)
            {
                Console.Error.WriteLine("research only: this scrambling is not a protection (docs/chaos-cipher.md)");
            }

            return Cli.Ok;
        });
        return command;
    }

    private static byte[] LoadKey(string path, bool create)
    {
        if (!File.Exists(path))
        {
            if (!create)
            {
                throw new CliException($"no key file {path}");
            }

            var fresh = RandomNumberGenerator.GetBytes(ChaoticImageCipher.KeySizeBytes);
            SecretFile.Write(path, fresh);
            return fresh;
        }

        var bytes = File.ReadAllBytes(path);
        return bytes.Length == ChaoticImageCipher.KeySizeBytes
            ? bytes
            : throw new CliException($"{path}: a key file holds exactly {ChaoticImageCipher.KeySizeBytes} bytes, not {bytes.Length}");
    }
}
