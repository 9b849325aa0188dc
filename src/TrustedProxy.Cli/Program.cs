using System.CommandLine;
using TrustedProxy.Cli;

var root = new RootCommand("tproxy: run and use TrustedProxy, the privacy proxy between hospitals and the cloud")
{
    InitCommand.Create(),
    ServeCommand.Create(),
    RecordCommands.Upload(),
    RecordCommands.Find(),
    RecordCommands.Fetch(),
    RecordCommands.Delete(),
    RecordCommands.Trace(),
    RecordCommands.WhoAmI(),
    RecordCommands.Records(),
    ExportCommands.Export(),
    ExportCommands.Open(),
    CaCommands.Create(),
    KeyCommands.Create(),
    BackupCommands.Create(),
    BackupCommands.Recover(),
    AuditCommands.Create(),
    PolicyCommands.Create(),
    ResearchCommands.Create(),
};

return await root.Parse(args).InvokeAsync();
