#!/usr/bin/env bash
# The README's test command. Installs what the tests need on a fresh machine, then runs every test:
#   - Debian packages, when missing and root:
#       python3-pydicom, python3-numpy, python3-pil  pydicom's DICOM corpus, and pydicom as the tests' oracle
#       dcmtk                                         dcmdump, an independent reader of what the proxy sends
#       orthanc, orthanc-dicomweb                     a real DICOMweb client for the interoperability test
#       nodejs, npm                                   for the cloud emulators
#       chromium, fonts-dejavu-core                   the dashboard's browser test (driven by Playwright), and a
#                                                     TrueType font the PDF-report test embeds
#       postgresql                                    a real PostgreSQL 15 for the database tests, started by the tests
#                                                     themselves in a temporary directory (never the system service)
#   - Azurite and s3rver from tools/package-lock.json (npm ci)
#   - NuGet packages (dotnet restore, part of dotnet test)
# Extra arguments go to `dotnet test`, e.g. tools/test.sh --filter FullyQualifiedName~Crypto
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for package in python3-pydicom python3-numpy python3-pil dcmtk orthanc orthanc-dicomweb chromium fonts-dejavu-core; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
# initdb is not on PATH in Debian's package (it lives in /usr/lib/postgresql/<version>/bin).
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # Orthanc and PostgreSQL are only test parts here: their packages must not start the system services.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.tproxy && chmod +x /usr/sbin/policy-rc.d.tproxy
    [ -e /usr/sbin/policy-rc.d ] || { cp /usr/sbin/policy-rc.d.tproxy /usr/sbin/policy-rc.d; remove_policy=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "${remove_policy:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.tproxy
  else
    echo "tools/test.sh: missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
fi

npm ci --prefix tools --no-audit --no-fund --loglevel=error

dotnet test TrustedProxy.sln -c Release "$@"
