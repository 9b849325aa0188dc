using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Records;

public sealed class RecordIndexTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void OpeningTwice_MigratesOnce_AndUsesWal()
    {
        var path = _directory.File("proxy.db");
        var first = new RecordIndex(path);
        var second = new RecordIndex(path);

        Assert.Equal(first.SchemaVersion, second.SchemaVersion);
        using var connection = second.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", command.ExecuteScalar());
    }

    [Fact]
    public async Task Search_CombinesCriteria_AndOnlyReturnsStoredRecordsInScope()
    {
        var index = new RecordIndex(_directory.File("proxy.db"));
        await index.InsertAsync(Entry("p1", "1.2.3", "CT", new DateOnly(2024, 1, 10), "Haukeland", RecordState.Stored));
        await index.InsertAsync(Entry("p1", "1.2.3", "CT", new DateOnly(2024, 1, 12), "St Olav", RecordState.Stored));
        await index.InsertAsync(Entry("p1", "1.2.3", "MR", new DateOnly(2024, 3, 1), "Haukeland", RecordState.Stored));
        await index.InsertAsync(Entry("p2", "1.2.4", "CT", new DateOnly(2024, 1, 11), "Haukeland", RecordState.Stored));
        await index.InsertAsync(Entry("p1", "1.2.3", "CT", new DateOnly(2024, 1, 11), "Haukeland", RecordState.Staged));

        Assert.Equal(3, (await index.SearchAsync(new RecordQuery { PatientPseudonym = "p1" })).Count);
        Assert.Equal(2, (await index.SearchAsync(new RecordQuery { PatientPseudonym = "p1", Modality = "CT" })).Count);
        Assert.Single(await index.SearchAsync(new RecordQuery { PatientPseudonym = "p1", Modality = "CT", OriginOrganisations = ["St Olav"] }));
        Assert.Equal(2, (await index.SearchAsync(new RecordQuery { StudyDateFrom = new DateOnly(2024, 1, 11), StudyDateTo = new DateOnly(2024, 1, 31) })).Count);
        Assert.Equal(2, (await index.SearchAsync(new RecordQuery { Limit = 2 })).Count);
        Assert.Equal(2, (await index.SearchAsync(new RecordQuery { Offset = 2 })).Count);
    }

    [Fact]
    public async Task Transition_OnlyFromTheExpectedState()
    {
        var index = new RecordIndex(_directory.File("proxy.db"));
        var entry = Entry("p1", "1.2.3", "CT", null, "Haukeland", RecordState.Staged);
        await index.InsertAsync(entry);

        Assert.False(await index.TransitionAsync(entry.Handle, RecordState.Stored, RecordState.Deleting));
        Assert.True(await index.TransitionAsync(entry.Handle, RecordState.Staged, RecordState.Stored));
        var stored = await index.FindAsync(entry.Handle);
        Assert.Equal(RecordState.Stored, stored!.State);
        Assert.Equal(entry.WrappedKey, stored.WrappedKey);
        Assert.Equal(entry.ObjectName, stored.ObjectName);
    }

    [Fact]
    public async Task RecordsIndexedBeforeScoping_KeepTheirPseudonym_AndAreFoundByTheirPatientId()
    {
        var path = _directory.File("proxy.db");
        var old = new RecordIndex(path, migrateTo: 7);
        // Before v8 the patient pseudonym was the Patient ID's alone, whoever sent it.
        await old.InsertAsync(Entry("old-id-pseudonym", "1.2.3", "CT", null, "Haukeland", RecordState.Stored));

        var migrated = new RecordIndex(path);
        await migrated.InsertAsync(Entry("scoped-st-olav", "1.2.4", "CT", null, "St Olav", RecordState.Stored) with { PatientIdMatch = "old-id-pseudonym" });

        var byId = await migrated.SearchAsync(new RecordQuery { PatientIdMatch = "old-id-pseudonym" });
        Assert.Equal(["old-id-pseudonym", "scoped-st-olav"], byId.Select(e => e.PatientPseudonym).Order());
        Assert.Equal("old-id-pseudonym", Assert.Single(await migrated.SearchAsync(new RecordQuery { PatientPseudonym = "old-id-pseudonym" })).PatientIdMatch);
    }

    [Fact]
    public async Task FindInstance_IsScopedToTheOrganisation_AndSkipsRecordsBeingDeleted_OldestFirst()
    {
        var index = new RecordIndex(_directory.File("proxy.db"));
        RecordEntry Instance(string origin, RecordState state, int minutesAgo) =>
            Entry("p1", "1.2.3", "CT", null, origin, state) with { SopInstanceUid = "1.2.3.4", CreatedAt = DateTimeOffset.UtcNow.AddMinutes(-minutesAgo) };
        var newer = Instance("Haukeland", RecordState.Stored, 1);
        var older = Instance("Haukeland", RecordState.Cached, 5);
        var staged = Instance("Haukeland", RecordState.Staged, 0);
        await index.InsertAsync(newer);
        await index.InsertAsync(older);
        await index.InsertAsync(staged);
        await index.InsertAsync(Instance("Haukeland", RecordState.Deleting, 3));
        await index.InsertAsync(Instance("St Olav", RecordState.Stored, 2));
        await index.InsertAsync(Entry("p1", "1.2.3", "CT", null, "Haukeland", RecordState.Stored) with { SopInstanceUid = "1.2.3.5" });

        var found = await index.FindInstanceAsync("Haukeland", "1.2.3.4");

        Assert.Equal([older.Handle, newer.Handle, staged.Handle], found.Select(e => e.Handle));
        Assert.Empty(await index.FindInstanceAsync("Bergen", "1.2.3.4"));
    }

    public void Dispose() => _directory.Dispose();

    private static RecordEntry Entry(string patient, string study, string modality, DateOnly? date, string origin, RecordState state) => new()
    {
        Handle = RecordHandle.New(),
        ObjectName = ObjectName.NewRandom(),
        WrappedKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(61),
        PatientPseudonym = patient,
        StudyInstanceUid = study,
        Modality = modality,
        StudyDate = date,
        TransferSyntaxUid = "1.2.840.10008.1.2.1",
        PlaintextLength = 10,
        StoredLength = 74,
        ContentSha256 = new byte[32],
        OriginOrganisation = origin,
        State = state,
        CreatedAt = DateTimeOffset.UtcNow,
    };
}
