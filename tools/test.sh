#!/usr/bin/env bash
# The README's test command. Installs what the tests need on a fresh machine, then runs every test:
#   - Debian's python3-pydicom (pydicom's DICOM corpus, and pydicom as the tests' oracle), when missing and root
#   - Node.js and npm (for the emulators), when missing and root
#   - Azurite and s3rver from tools/package-lock.json (npm ci)
#   - NuGet packages (dotnet restore, part of dotnet test)
# Extra arguments go to `dotnet test`, e.g. tools/test.sh --filter FullyQualifiedName~Crypto
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
dpkg -s python3-pydicom >/dev/null 2>&1 || missing+=(python3-pydicom)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "tools/test.sh: missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
fi

npm ci --prefix tools --no-audit --no-fund --loglevel=error

dotnet test TrustedProxy.sln -c Release "$@"
