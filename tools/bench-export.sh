#!/usr/bin/env bash
# Export cost (docs/benchmarks.md, "Export to a recipient"): OpenSSL's equivalents, then the
# BenchmarkDotNet suite, in one run on one machine. Single-threaded throughout.
#   per record: a P-256 key generation (about one ECDSA signature's fixed-base multiplication) plus
#               one ECDH derivation — openssl speed ecdsap256 (sign) and ecdhp256
#   per MB:     AES-256-GCM on 64 KiB blocks plus SHA-256 of the result (the signature's transcript)
#               — openssl speed -evp aes-256-gcm and -evp sha256
# OpenSSL runs before and after the .NET suite, so a machine whose load changes shows it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_PER_TEST:-3}"
reference() {
  echo "== openssl $(openssl version) ($1; load: $(cut -d' ' -f1-3 /proc/loadavg))"
  openssl speed -seconds "$seconds" ecdhp256 2>/dev/null | tail -1
  openssl speed -seconds "$seconds" ecdsap256 2>/dev/null | tail -1
  openssl speed -seconds "$seconds" -bytes 65536 -evp aes-256-gcm 2>/dev/null | tail -1
  openssl speed -seconds "$seconds" -bytes 65536 -evp sha256 2>/dev/null | tail -1
}
reference before
echo "== BenchmarkDotNet (load: $(cut -d' ' -f1-3 /proc/loadavg))"
dotnet run -c Release --project tests/TrustedProxy.Benchmarks -- --filter '*ExportBenchmarks*' "$@"
reference after
