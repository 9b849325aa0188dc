using TrustedProxy.UploadCache;

namespace TrustedProxy.PrivacyTests.Privacy;

public sealed class HospitalWorkloadTests
{
    private static HospitalWorkload Workload => SimulatedRuns.Workload;

    [Fact]
    public void TheSameSeed_GivesTheSameTraffic()
    {
        var options = new WorkloadOptions { Duration = TimeSpan.FromHours(12), Seed = 42 };

        Assert.Equal(HospitalWorkload.Generate(options).Records, HospitalWorkload.Generate(options).Records);
        Assert.NotEqual(HospitalWorkload.Generate(options).Records[0].ArrivedAt, HospitalWorkload.Generate(options with { Seed = 43 }).Records[0].ArrivedAt);
    }

    [Fact]
    public void TheDocumentedLoad_IsAboutOneBlockPerSecond()
    {
        var load = Workload.Load(new FixedBlockPadding(128 * 1024));

        Assert.InRange(load.StudiesPerDay, 240, 300);
        Assert.InRange(load.BlocksPerSecond, 0.9, 1.3);
        Assert.InRange(load.RecordsPerSecond, 0.15, 0.3);
        Assert.InRange(load.PaddingOverhead, 0.05, 0.2);
    }

    [Fact]
    public void Studies_HaveTheirModalitysShape()
    {
        var records = Workload.Records.ToLookup(r => r.StudyId);
        foreach (var study in Workload.Studies)
        {
            var instances = records[study.Id].ToList();
            Assert.Equal(study.Instances, instances.Count);
            Assert.All(instances, r => Assert.Equal(study.PatientId, r.PatientId));
            var sizes = instances.Select(r => r.PlaintextLength).Distinct().ToList();
            switch (study.Modality)
            {
                case Modality.CT:
                    Assert.InRange(study.Instances, 100, 300);
                    Assert.InRange(Assert.Single(sizes), 490 * 1024, 560 * 1024);
                    break;
                case Modality.MR:
                    Assert.InRange(study.Instances, 20, 200);
                    Assert.InRange(Assert.Single(sizes), 120 * 1024, 140 * 1024);
                    break;
                default:
                    Assert.InRange(study.Instances, 1, 4);
                    Assert.All(sizes, s => Assert.InRange(s, 5_000_000, 10_000_000));
                    break;
            }
        }

        var shares = Workload.Studies.CountBy(s => s.Modality).ToDictionary(p => p.Key, p => (double)p.Value / Workload.Studies.Count);
        Assert.InRange(shares[Modality.CT], 0.2, 0.3);
        Assert.InRange(shares[Modality.MR], 0.1, 0.2);
    }

    [Fact]
    public void AStudy_ArrivesAsABurst_AtTheModalitysSendRate()
    {
        foreach (var study in Workload.Studies.Where(s => s.Modality == Modality.CT))
        {
            var times = Workload.Records.Where(r => r.StudyId == study.Id).Select(r => r.ArrivedAt).ToList();
            var seconds = (times[^1] - times[0]).TotalSeconds;
            Assert.InRange((times.Count - 1) / seconds, 10 * 0.5, 30 * 2.0);
        }
    }

    [Fact]
    public void PatientsReturn_AndBacklogsArePushedNowAndThen()
    {
        var studiesPerPatient = Workload.Studies.CountBy(s => s.PatientId).Select(p => p.Value).ToList();

        Assert.Contains(studiesPerPatient, n => n > 1);
        Assert.Contains(Workload.Studies, s => s.InBacklog);
        Assert.Equal(Enumerable.Range(0, Workload.Studies.Count), Workload.Studies.Select(s => s.Id));
    }
}
