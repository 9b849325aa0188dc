using Microsoft.Data.Sqlite;

namespace TrustedProxy.IO;

/// <summary>
/// Tells a local write that failed for want of space from every other I/O failure: the first is
/// the operator's to fix and the client's to retry later, the others are faults.
/// </summary>
internal static class DiskFull
{
    // errno ENOSPC on Linux: .NET puts the raw errno in the IOException's HResult on Unix.
    private const int Enospc = 28;

    // Windows: ERROR_HANDLE_DISK_FULL and ERROR_DISK_FULL as HRESULTs.
    private const int WindowsHandleDiskFull = unchecked((int)0x80070027);
    private const int WindowsDiskFull = unchecked((int)0x80070070);

    // SQLITE_FULL: "database or disk is full", SQLite's own word for ENOSPC under its journal or WAL.
    private const int SqliteFull = 13;

    public static bool Is(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                // The audit log's own failure is its own problem (fail closed, 503), whatever its cause.
                case Audit.AuditUnavailableException:
                    return false;
                case SqliteException { SqliteErrorCode: SqliteFull }:
                    return true;
                case IOException io when io.HResult is Enospc or WindowsHandleDiskFull or WindowsDiskFull:
                    return true;
            }
        }

        return false;
    }
}
