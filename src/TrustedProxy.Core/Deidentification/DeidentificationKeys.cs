using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Crypto;
using TrustedProxy.Pseudonymization;

namespace TrustedProxy.Deidentification;

/// <summary>
/// The keyed derivations behind the de-identified view, each under its own key from the master key:
/// replacement UIDs, per-patient date shifts and research pseudonyms. The same input always gives
/// the same output inside this proxy, so relationships survive across uploads; without the key
/// nothing links back.
/// </summary>
internal sealed class DeidentificationKeys(byte[] uidKey, byte[] dateShiftKey, byte[] pseudonymKey, bool linkPatientsAcrossOrganisations = false)
{
    public static DeidentificationKeys From(ProxyKeyRing ring, bool linkPatientsAcrossOrganisations) => new(
        ring.Derive(ProxyKeyRing.DeidentifiedUidInfo),
        ring.Derive(ProxyKeyRing.DateShiftInfo),
        ring.Derive(ProxyKeyRing.ResearchPseudonymInfo),
        linkPatientsAcrossOrganisations);

    /// <summary>
    /// What identifies the patient for pseudonyms and date shifts: the Patient ID, else the
    /// name, else the study (so that at least one study stays consistent), in the patient's scope
    /// (issuer, else origin organisation; <see cref="PatientScope"/>) unless patients are linked
    /// across organisations.
    /// </summary>
    public string PatientKey(TrustedProxy.Dicom.DicomDataset header, string originOrganisation)
    {
        var key = header.GetString(TrustedProxy.Dicom.DicomTag.PatientId)?.Trim() ?? header.GetString(TrustedProxy.Dicom.DicomTag.PatientName) ?? header.GetString(TrustedProxy.Dicom.DicomTag.StudyInstanceUid) ?? string.Empty;
        return linkPatientsAcrossOrganisations ? key : PatientScope.Of(header, originOrganisation).Value + "\0" + key;
    }

    /// <summary>"2.25." followed by the decimal form of 128 bits of HMAC-SHA256 over the original UID (PS3.5 B.2).</summary>
    public string ReplacementUid(string uid)
    {
        var mac = Mac(uidKey, "uid", uid);
        return "2.25." + new BigInteger(mac.AsSpan(0, 16), isUnsigned: true, isBigEndian: true).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>How many days (1 to <paramref name="maxDays"/>) this patient's dates move back.</summary>
    public int DateShiftDays(string patientKey, int maxDays)
    {
        var mac = Mac(dateShiftKey, "patient", patientKey);
        return 1 + (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(mac) % (uint)maxDays);
    }

    /// <summary>The patient's name and ID in the de-identified view: "TP" and 80 bits of HMAC, hex.</summary>
    public string ResearchPseudonym(string patientKey) => "TP" + Convert.ToHexString(Mac(pseudonymKey, "patient", patientKey).AsSpan(0, 10));

    private static byte[] Mac(byte[] key, string label, string value) =>
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(label + "\0" + value.Trim()));
}
