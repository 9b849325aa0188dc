namespace TrustedProxy.Dicom;

/// <summary>A value representation, held as its two ASCII characters.</summary>
public readonly record struct DicomVR(ushort Code)
{
    public static readonly DicomVR AE = From("AE"), AS = From("AS"), AT = From("AT"), CS = From("CS"), DA = From("DA"),
        DS = From("DS"), DT = From("DT"), FD = From("FD"), FL = From("FL"), IS = From("IS"), LO = From("LO"), LT = From("LT"),
        OB = From("OB"), OD = From("OD"), OF = From("OF"), OL = From("OL"), OV = From("OV"), OW = From("OW"), PN = From("PN"),
        SH = From("SH"), SL = From("SL"), SQ = From("SQ"), SS = From("SS"), ST = From("ST"), SV = From("SV"), TM = From("TM"),
        UC = From("UC"), UI = From("UI"), UL = From("UL"), UN = From("UN"), UR = From("UR"), US = From("US"), UT = From("UT"),
        UV = From("UV");

    /// <summary>No VR: items and delimiters carry none.</summary>
    public static readonly DicomVR None = default;

    private static readonly HashSet<ushort> Known =
    [
        AE.Code, AS.Code, AT.Code, CS.Code, DA.Code, DS.Code, DT.Code, FD.Code, FL.Code, IS.Code, LO.Code, LT.Code, OB.Code,
        OD.Code, OF.Code, OL.Code, OV.Code, OW.Code, PN.Code, SH.Code, SL.Code, SQ.Code, SS.Code, ST.Code, SV.Code, TM.Code,
        UC.Code, UI.Code, UL.Code, UN.Code, UR.Code, US.Code, UT.Code, UV.Code,
    ];

    public static DicomVR From(string text) => new((ushort)((text[0] << 8) | text[1]));

    public static DicomVR From(byte first, byte second) => new((ushort)((first << 8) | second));

    public bool IsKnown => Known.Contains(Code);

    /// <summary>In explicit VR these VRs have two reserved bytes and a 32-bit length (PS3.5 7.1.2).</summary>
    public bool HasLongExplicitLength =>
        this == OB || this == OD || this == OF || this == OL || this == OV || this == OW || this == SQ || this == SV ||
        this == UC || this == UN || this == UR || this == UT || this == UV;

    /// <summary>Character-string VRs whose value is text in the data set's character set or ASCII.</summary>
    public bool IsText =>
        this == AE || this == AS || this == CS || this == DA || this == DS || this == DT || this == IS || this == LO ||
        this == LT || this == PN || this == SH || this == ST || this == TM || this == UC || this == UI || this == UR || this == UT;

    public byte First => (byte)(Code >> 8);

    public byte Second => (byte)Code;

    public override string ToString() => Code == 0 ? "--" : new string([(char)First, (char)Second]);
}
