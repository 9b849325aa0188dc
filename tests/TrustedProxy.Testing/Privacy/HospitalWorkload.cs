using System.Globalization;
using TrustedProxy.Crypto;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy;

/// <summary>The kinds of study the workload sends; they differ in instance count and size.</summary>
public enum Modality
{
    /// <summary>CT: 100–300 instances of about 525 KB, all of one size within a study.</summary>
    CT,

    /// <summary>MR: 20–200 instances of about 130 KB, all of one size within a study.</summary>
    MR,

    /// <summary>CR/DX: 1–4 instances of 5–10 MB, each its own size.</summary>
    CR,
}

/// <summary>
/// The hospital traffic to replay. The defaults are the documented load of docs/privacy.md: about
/// 270 studies a day over four hospitals (backlog pushes included), 0.2 records/s, about 1.0 fixed
/// 128 KiB blocks per second on average (about 1.6/s at the afternoon peak), about 12 GB a day.
/// </summary>
public sealed record WorkloadOptions
{
    public int Hospitals { get; init; } = 4;

    /// <summary>Mean studies a day per hospital, before backlog pushes.</summary>
    public double StudiesPerHospitalPerDay { get; init; } = 60;

    /// <summary>Relative day/night swing of the study rate: rate × (1 + a·cos(2π(t − 14:00)/24 h)); 0 for a flat rate.</summary>
    public double DiurnalAmplitude { get; init; } = 0.6;

    /// <summary>Share of studies that belong to a patient the hospital has sent before.</summary>
    public double ReturningPatientShare { get; init; } = 0.2;

    public double CtShare { get; init; } = 0.25;

    public double MrShare { get; init; } = 0.15;

    /// <summary>Instances a second a modality sends at, drawn per study between these bounds.</summary>
    public double MinInstancesPerSecond { get; init; } = 10;

    public double MaxInstancesPerSecond { get; init; } = 30;

    /// <summary>A hospital's link: large instances cannot arrive faster than this.</summary>
    public double LinkBytesPerSecond { get; init; } = 100e6;

    /// <summary>Chance that a study is followed by a backlog push (a queue flushed after an outage): several more studies back to back.</summary>
    public double BacklogShare { get; init; } = 0.01;

    public int BacklogMinStudies { get; init; } = 5;

    public int BacklogMaxStudies { get; init; } = 20;

    public TimeSpan Duration { get; init; } = TimeSpan.FromDays(1);

    public int Seed { get; init; } = 1;
}

/// <summary>One uploaded record (a DICOM instance) as the proxy receives it; ground truth, never shown to the attacker as such.</summary>
/// <param name="Id">Sequence number of the record, in arrival order.</param>
/// <param name="StudyId">The study it belongs to.</param>
/// <param name="PatientId">The patient (unique across hospitals).</param>
/// <param name="HospitalId">The hospital that sent it.</param>
/// <param name="ArrivedAt">When the proxy received it.</param>
/// <param name="PlaintextLength">Bytes uploaded.</param>
/// <param name="CiphertextLength">Length of its envelope (header, plaintext, a tag per 64 KiB segment).</param>
public sealed record UploadedRecord(long Id, int StudyId, int PatientId, int HospitalId, DateTimeOffset ArrivedAt, long PlaintextLength, long CiphertextLength);

/// <summary>A study sent as a burst of instances.</summary>
public sealed record StudyBurst(int Id, int PatientId, int HospitalId, Modality Modality, DateTimeOffset StartedAt, int Instances, bool InBacklog);

/// <summary>The load a workload puts on the proxy and the cloud, under one padding scheme.</summary>
public sealed record WorkloadLoad(double StudiesPerDay, double RecordsPerSecond, double BlocksPerSecond, double StoredBytesPerSecond, double PaddingOverhead)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{StudiesPerDay:F0} studies/day, {RecordsPerSecond:F2} records/s, {BlocksPerSecond:F2} blocks/s, {StoredBytesPerSecond / 1e3:F0} kB/s stored ({StoredBytesPerSecond * 86400 / 1e9:F1} GB/day, padding overhead {PaddingOverhead:P1})");
}

/// <summary>
/// Seeded hospital traffic: studies arrive per hospital as a Poisson process (with a day/night
/// swing), each study's instances follow each other at the modality's send rate, and now and then
/// a hospital pushes a backlog of studies back to back.
/// </summary>
public sealed class HospitalWorkload
{
    /// <summary>Simulations start at midnight UTC on a fixed day, so the diurnal swing is aligned.</summary>
    public static readonly DateTimeOffset Epoch = new(2025, 1, 6, 0, 0, 0, TimeSpan.Zero);

    private HospitalWorkload(WorkloadOptions options, List<UploadedRecord> records, List<StudyBurst> studies)
    {
        Options = options;
        Records = records;
        Studies = studies;
    }

    public WorkloadOptions Options { get; }

    public DateTimeOffset Start => Epoch;

    public TimeSpan Duration => Options.Duration;

    /// <summary>Every record, by arrival time.</summary>
    public IReadOnlyList<UploadedRecord> Records { get; }

    /// <summary>Every study, by start time.</summary>
    public IReadOnlyList<StudyBurst> Studies { get; }

    public static HospitalWorkload Generate(WorkloadOptions options)
    {
        var random = new Random(options.Seed);
        var records = new List<UploadedRecord>();
        var studies = new List<StudyBurst>();
        var end = options.Duration.TotalSeconds;
        var nextPatient = 0;
        for (var hospital = 0; hospital < options.Hospitals; hospital++)
        {
            var patients = new List<int>();
            var meanRate = options.StudiesPerHospitalPerDay / 86400;
            var maxRate = meanRate * (1 + Math.Abs(options.DiurnalAmplitude));

            // Thinning (Lewis–Shedler): candidates at the peak rate, kept with probability rate(t)/peak.
            var t = 0.0;
            var busyUntil = 0.0;
            while (true)
            {
                t += Exponential(random, 1 / maxRate);
                if (t >= end)
                {
                    break;
                }

                if (random.NextDouble() * maxRate > Rate(meanRate, options.DiurnalAmplitude, t))
                {
                    continue;
                }

                var finished = SendStudy(t);
                if (random.NextDouble() < options.BacklogShare)
                {
                    // The backlog goes out on the same link as fast as it can, one study after another.
                    var next = Math.Max(finished, busyUntil) + 1;
                    var count = random.Next(options.BacklogMinStudies, options.BacklogMaxStudies + 1);
                    for (var i = 0; i < count && next < end; i++)
                    {
                        next = SendStudy(next, inBacklog: true) + 1;
                    }

                    busyUntil = next;
                }
            }

            double SendStudy(double start, bool inBacklog = false)
            {
                int patient;
                if (patients.Count > 0 && random.NextDouble() < options.ReturningPatientShare)
                {
                    patient = patients[random.Next(patients.Count)];
                }
                else
                {
                    patient = nextPatient++;
                    patients.Add(patient);
                }

                var roll = random.NextDouble();
                var modality = roll < options.CtShare ? Modality.CT : roll < options.CtShare + options.MrShare ? Modality.MR : Modality.CR;
                var (instances, studySize) = modality switch
                {
                    Modality.CT => (random.Next(100, 301), (long)(random.Next(490, 561) * 1024L)),
                    Modality.MR => (random.Next(20, 201), (long)(random.Next(120, 141) * 1024L)),
                    _ => (random.Next(1, 5), 0L),
                };
                var study = studies.Count;
                studies.Add(new StudyBurst(study, patient, hospital, modality, Epoch.AddSeconds(start), instances, inBacklog));
                var perSecond = options.MinInstancesPerSecond + random.NextDouble() * (options.MaxInstancesPerSecond - options.MinInstancesPerSecond);
                var at = start;
                for (var i = 0; i < instances; i++)
                {
                    var size = modality == Modality.CR ? random.NextInt64(5_000_000, 10_000_001) : studySize;
                    records.Add(new UploadedRecord(0, study, patient, hospital, Epoch.AddSeconds(at), size, SegmentedEnvelope.CiphertextLength(size)));
                    at += Math.Max((0.5 + random.NextDouble()) / perSecond, size / options.LinkBytesPerSecond);
                }

                return at;
            }
        }

        studies.Sort((a, b) => a.StartedAt.CompareTo(b.StartedAt));
        var renumbered = studies.Select((s, i) => (s.Id, New: i)).ToDictionary(p => p.Id, p => p.New);
        var sortedStudies = studies.Select(s => s with { Id = renumbered[s.Id] }).ToList();
        var sortedRecords = records
            .OrderBy(r => r.ArrivedAt)
            .Select((r, i) => r with { Id = i, StudyId = renumbered[r.StudyId] })
            .ToList();
        return new HospitalWorkload(options, sortedRecords, sortedStudies);
    }

    /// <summary>The mean load over the workload's duration when its records are cut and padded by <paramref name="padding"/>.</summary>
    public WorkloadLoad Load(IPaddingScheme padding)
    {
        var seconds = Duration.TotalSeconds;
        long blocks = 0, stored = 0, ciphertext = 0;
        foreach (var record in Records)
        {
            var layout = padding.Layout(record.CiphertextLength);
            blocks += layout.Count;
            stored += layout.StoredLength;
            ciphertext += record.CiphertextLength;
        }

        return new WorkloadLoad(Studies.Count / (seconds / 86400), Records.Count / seconds, blocks / seconds, stored / seconds, (double)stored / ciphertext - 1);
    }

    private static double Rate(double mean, double amplitude, double seconds) =>
        mean * (1 + amplitude * Math.Cos(2 * Math.PI * (seconds / 86400 - 14.0 / 24)));

    private static double Exponential(Random random, double mean) => -Math.Log(1 - random.NextDouble()) * mean;
}
