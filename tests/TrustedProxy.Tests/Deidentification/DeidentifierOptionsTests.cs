using TrustedProxy.Deidentification;
using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Deidentification;

public sealed class DeidentifierOptionsTests
{
    private static readonly DicomTag PatientName = new(0x0010, 0x0010);
    private static readonly DicomTag PatientSex = new(0x0010, 0x0040);
    private static readonly DicomTag StudyDescription = new(0x0008, 0x1030);
    private static readonly DicomTag InstitutionName = new(0x0008, 0x0080);
    private static readonly DicomTag StationName = new(0x0008, 0x1010);
    private readonly Deidentifier _deidentifier = new(new DeidentificationKeys(new byte[32], Enumerable.Repeat((byte)1, 32).ToArray(), Enumerable.Repeat((byte)2, 32).ToArray()));

    [Fact]
    public async Task TheSamePatientIdFromTwoHospitals_IsTwoResearchPatients_AndStudiesMapAsTheOriginalsDid()
    {
        var fromHaukeland = await Deidentify(Patient("P-1234", "Nordmann^Kari").Study("1.2.3.100", "1.2.3.100.1", "20240105", "CT"), origin: "Haukeland");
        var againFromHaukeland = await Deidentify(Patient("P-1234", "NORDMANN^KARI").Study("1.2.3.100", "1.2.3.100.3", "20240105", "CT"), origin: "Haukeland");
        var fromStOlav = await Deidentify(Patient("P-1234", "Nordmann^Kari").Study("1.2.3.100", "1.2.3.100.2", "20240105", "CT"), origin: "St Olav");
        var otherStudy = await Deidentify(Patient("P-1234", "Nordmann^Kari").Study("1.2.3.200", "1.2.3.200.1", "20240301", "MR"), origin: "Haukeland");
        var otherPatient = await Deidentify(Patient("P-9999", "Hansen^Ola").Study("1.2.3.300", "1.2.3.300.1", "20240105", "CT"), origin: "Haukeland");

        Assert.NotEqual(fromHaukeland.GetString(DicomTag.PatientId), fromStOlav.GetString(DicomTag.PatientId));
        Assert.Equal(fromHaukeland.GetString(DicomTag.PatientId), againFromHaukeland.GetString(DicomTag.PatientId));
        Assert.Equal(fromHaukeland.GetString(DicomTag.PatientId), otherStudy.GetString(DicomTag.PatientId));
        Assert.NotEqual(fromHaukeland.GetString(DicomTag.PatientId), otherPatient.GetString(DicomTag.PatientId));
        Assert.Equal(fromHaukeland.GetString(DicomTag.StudyInstanceUid), fromStOlav.GetString(DicomTag.StudyInstanceUid));
        Assert.NotEqual(fromHaukeland.GetString(DicomTag.SeriesInstanceUid), fromStOlav.GetString(DicomTag.SeriesInstanceUid));
        Assert.NotEqual(fromHaukeland.GetString(DicomTag.StudyInstanceUid), otherStudy.GetString(DicomTag.StudyInstanceUid));
        Assert.Equal(fromHaukeland.GetString(DicomTag.PatientId), fromHaukeland.GetString(PatientName));
        Assert.DoesNotContain("P-1234", fromHaukeland.GetString(DicomTag.PatientId));
    }

    [Fact]
    public async Task TheIssuerOfPatientId_ScopesTheResearchPseudonym_WhoeverUploads()
    {
        var file = Patient("P-1234", "Nordmann^Kari").Text(0x0010, 0x0021, "LO", "HELSE-VEST");
        var otherIssuer = Patient("P-1234", "Nordmann^Kari").Text(0x0010, 0x0021, "LO", "HELSE-MIDT");

        var viaHaukeland = await Deidentify(file, origin: "Haukeland");
        var viaStOlav = await Deidentify(file, origin: "St Olav");
        var withoutIssuer = await Deidentify(Patient("P-1234", "Nordmann^Kari"), origin: "Haukeland");

        Assert.Equal(viaHaukeland.GetString(DicomTag.PatientId), viaStOlav.GetString(DicomTag.PatientId));
        Assert.NotEqual(viaHaukeland.GetString(DicomTag.PatientId), (await Deidentify(otherIssuer, origin: "Haukeland")).GetString(DicomTag.PatientId));
        Assert.NotEqual(viaHaukeland.GetString(DicomTag.PatientId), withoutIssuer.GetString(DicomTag.PatientId));
        Assert.False(viaHaukeland.Contains(new DicomTag(0x0010, 0x0021)));
    }

    [Fact]
    public async Task WithLinkage_TheSamePatientIdFromTwoHospitals_IsOneResearchPatient_WithOneDateShift()
    {
        var linked = new Deidentifier(new DeidentificationKeys(new byte[32], Enumerable.Repeat((byte)1, 32).ToArray(), Enumerable.Repeat((byte)2, 32).ToArray(), linkPatientsAcrossOrganisations: true));
        var profile = new DeidentificationProfile { Options = [DeidentificationOption.RetainLongitudinalModifiedDates] };
        var file = Patient("P-1234", "Nordmann^Kari").Study("1.2.3.100", "1.2.3.100.1", "20240105", "CT");

        var fromHaukeland = await Deidentify(file, profile, "Haukeland", linked);
        var fromStOlav = await Deidentify(file, profile, "St Olav", linked);

        Assert.Equal(fromHaukeland.GetString(DicomTag.PatientId), fromStOlav.GetString(DicomTag.PatientId));
        Assert.Equal(fromHaukeland.GetString(DicomTag.StudyDate), fromStOlav.GetString(DicomTag.StudyDate));
        Assert.NotEqual(fromHaukeland.GetString(DicomTag.PatientId), (await Deidentify(file, profile, "Haukeland")).GetString(DicomTag.PatientId));
    }

    [Fact]
    public async Task ModifiedDates_ShiftEveryDateOfAPatientByTheSameDays_AndSayTheyWereModified()
    {
        var profile = new DeidentificationProfile { Name = "dates", Options = [DeidentificationOption.RetainLongitudinalModifiedDates], MaxDateShiftDays = 365 };
        var first = await Deidentify(Patient("P-1", "A^B").Study("1.2.3", "1.2.3.1", "20240105", "CT"), profile);
        var second = await Deidentify(Patient("P-1", "A^B").Study("1.2.4", "1.2.4.1", "20240305", "CT"), profile);

        var firstDate = DateOnly.ParseExact(first.GetString(DicomTag.StudyDate)!, "yyyyMMdd");
        var secondDate = DateOnly.ParseExact(second.GetString(DicomTag.StudyDate)!, "yyyyMMdd");
        Assert.NotEqual(new DateOnly(2024, 1, 5), firstDate);
        Assert.Equal(new DateOnly(2024, 3, 5).DayNumber - new DateOnly(2024, 1, 5).DayNumber, secondDate.DayNumber - firstDate.DayNumber);
        Assert.InRange(new DateOnly(2024, 1, 5).DayNumber - firstDate.DayNumber, 1, 365);
        Assert.Equal("MODIFIED", first.GetString(new DicomTag(0x0028, 0x0303)));
        Assert.Contains(first.Find(new DicomTag(0x0012, 0x0064))!.Sequence!.Items, i => i.Dataset.GetString(new DicomTag(0x0008, 0x0100)) == "113107");
    }

    [Fact]
    public async Task WithoutDateOptions_DatesAreRemovedOrEmptied()
    {
        var result = await Deidentify(Patient("P-1", "A^B").Study("1.2.3", "1.2.3.1", "20240105", "CT"));

        Assert.Null(result.GetString(DicomTag.StudyDate));
        Assert.Equal("REMOVED", result.GetString(new DicomTag(0x0028, 0x0303)));
    }

    [Fact]
    public async Task RetainUids_KeepsUids()
    {
        var result = await Deidentify(Patient("P-1", "A^B").Study("1.2.3", "1.2.3.1", "20240105", "CT"), new DeidentificationProfile { Options = [DeidentificationOption.RetainUids] });

        Assert.Equal("1.2.3", result.GetString(DicomTag.StudyInstanceUid));
    }

    [Fact]
    public async Task RetainPatientCharacteristics_KeepsSex_OtherwiseItIsEmptied()
    {
        var file = Patient("P-1", "A^B").Text(0x0010, 0x0040, "CS", "F");

        Assert.Equal("F", (await Deidentify(file, new DeidentificationProfile { Options = [DeidentificationOption.RetainPatientCharacteristics] })).GetString(PatientSex));
        Assert.Null((await Deidentify(file)).GetString(PatientSex));
    }

    [Fact]
    public async Task RetainInstitutionAndDeviceIdentity_KeepThem_OtherwiseTheyGo()
    {
        var file = Patient("P-1", "A^B").Text(0x0008, 0x0080, "LO", "Haukeland University Hospital").Text(0x0008, 0x1010, "SH", "CTSTATION7");
        var retained = await Deidentify(file, new DeidentificationProfile { Options = [DeidentificationOption.RetainInstitutionIdentity, DeidentificationOption.RetainDeviceIdentity] });
        var basic = await Deidentify(file);

        Assert.Equal("Haukeland University Hospital", retained.GetString(InstitutionName));
        Assert.Equal("CTSTATION7", retained.GetString(StationName));
        Assert.NotEqual("Haukeland University Hospital", basic.GetString(InstitutionName));
        Assert.NotEqual("CTSTATION7", basic.GetString(StationName));
    }

    [Fact]
    public async Task CleanDescriptors_KeepsTheDescription_WithoutTheIdentifiersInIt()
    {
        var file = Patient("P-1234", "Nordmann^Kari").Text(0x0008, 0x1030, "LO", "CT thorax for Kari Nordmann P-1234");

        var cleaned = await Deidentify(file, new DeidentificationProfile { Options = [DeidentificationOption.CleanDescriptors] });
        var basic = await Deidentify(file);

        Assert.Equal("CT thorax for *** *** ***", cleaned.GetString(StudyDescription));
        Assert.Null(basic.GetString(StudyDescription));
    }

    [Fact]
    public async Task PrivateAttributes_AreRemoved_UnlessSafeListedUnderRetainSafePrivate()
    {
        var file = Patient("P-1", "A^B")
            .Text(0x0009, 0x0010, "LO", "ACME 1.0")
            .Text(0x0009, 0x1001, "LO", "slice thickness note")
            .Text(0x0009, 0x1002, "LO", "operator Kari Nordmann");
        var safe = new DeidentificationProfile { Options = [DeidentificationOption.RetainSafePrivate], SafePrivateAttributes = ["ACME 1.0|0009,xx01"] };

        var kept = await Deidentify(file, safe);
        var basic = await Deidentify(file);

        Assert.Equal("ACME 1.0", kept.GetString(new DicomTag(0x0009, 0x0010)));
        Assert.Equal("slice thickness note", kept.GetString(new DicomTag(0x0009, 0x1001)));
        Assert.False(kept.Contains(new DicomTag(0x0009, 0x1002)));
        Assert.DoesNotContain(basic, e => e.Tag.IsPrivate);
    }

    [Theory]
    [InlineData("YES", "OT")]
    [InlineData(null, "US")]
    [InlineData(null, "SC")]
    public async Task ImagesMarkedOrSuspectedToCarryBurnedInText_AreRefused_UnlessAllowed(string? burnedIn, string modality)
    {
        var file = Patient("P-1", "A^B").Text(0x0008, 0x0060, "CS", modality).PixelData(64);
        if (burnedIn is not null)
        {
            file.Text(0x0028, 0x0301, "CS", burnedIn);
        }

        var error = await Assert.ThrowsAsync<DeidentificationRefusedException>(() => Deidentify(file));
        Assert.Contains("burned-in", error.Message);

        var allowed = await Deidentify(file, new DeidentificationProfile { AllowBurnedInAnnotation = true });
        Assert.Equal("YES", allowed.GetString(new DicomTag(0x0012, 0x0062)));
    }

    [Fact]
    public async Task AnImageMarkedFreeOfBurnedInText_IsServed()
    {
        var file = Patient("P-1", "A^B").Text(0x0008, 0x0060, "CS", "US").Text(0x0028, 0x0301, "CS", "NO").PixelData(64);

        Assert.Equal("YES", (await Deidentify(file)).GetString(new DicomTag(0x0012, 0x0062)));
    }

    [Fact]
    public async Task LargePixelData_StreamsThroughUnchanged()
    {
        var file = Patient("P-1", "A^B").Text(0x0008, 0x0060, "CS", "CT").PixelData(3 * Deidentifier.InlineLimit + 7, seed: 9);
        var original = await DicomFile.ReadAsync(new MemoryStream(file.Build()));

        var result = await Deidentify(file);

        Assert.True(original.Dataset.Find(DicomTag.PixelData)!.Value.Span.SequenceEqual(result.Find(DicomTag.PixelData)!.Value.Span));
    }

    private static DicomFileBuilder Patient(string id, string name) => new DicomFileBuilder().Patient(id, name);

    private async Task<DicomDataset> Deidentify(DicomFileBuilder file, DeidentificationProfile? profile = null, string origin = "Haukeland", Deidentifier? deidentifier = null)
    {
        using var output = new MemoryStream();
        await (deidentifier ?? _deidentifier).DeidentifyAsync(new MemoryStream(file.Build()), output, profile ?? new DeidentificationProfile(), origin, DicomReaderLimits.Default, CancellationToken.None);
        output.Position = 0;
        return (await DicomFile.ReadAsync(output)).Dataset;
    }
}
