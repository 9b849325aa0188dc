#!/usr/bin/env bash
# A coverage-guided fuzz campaign against one parser (docs/fuzzing.md):
#   tools/fuzz.sh <target> [--executions N | --seconds S] [--resume]
#   tools/fuzz.sh <target> --replay <path>...     run inputs once each (triage, corpus check)
#   tools/fuzz.sh <target> --seed                 regenerate a generated corpus (envelope, ot, png)
# Targets: dicom multipart png policy ot envelope (tests/TrustedProxy.Fuzz/Targets.cs).
# Builds tests/TrustedProxy.Fuzz (Release), copies the build per target, instruments the target's
# assemblies with SharpFuzz (the local tool in .config/dotnet-tools.json), and runs afl-fuzz on
# the corpus kept in tests/TrustedProxy.Fuzz/corpus/<target>. Findings land in
# $FUZZ_WORK/<target>/findings/default/{crashes,hangs} (FUZZ_WORK defaults to artifacts/fuzz).
# Installs afl++ (Debian) when root and missing. Not run by CI: CI runs the regression tests only.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,5p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1; shift
case "$target" in
  dicom|png|envelope) instrument=(TrustedProxy.Core.dll) ;;
  # YamlDotNet is app-local, so its parser is instrumented too: most of the policy loader's branches are there.
  policy) instrument=(TrustedProxy.Core.dll YamlDotNet.dll) ;;
  # The multipart framing itself is ASP.NET Core's MultipartReader, a shared-framework assembly that is
  # loaded from the runtime's directory, not ours: only the proxy's side (Content-Type, boundary) is instrumented.
  multipart) instrument=(TrustedProxy.Server.dll) ;;
  ot) instrument=(TrustedProxy.Client.dll) ;;
  *) usage ;;
esac

limit=(); resume=0; mode=fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    --executions) limit=(-E "$2"); shift 2 ;;
    --seconds) limit=(-V "$2"); shift 2 ;;
    --resume) resume=1; shift ;;
    --replay) mode=replay; shift; break ;;
    --seed) mode=seed; shift ;;
    *) usage ;;
  esac
done

work=${FUZZ_WORK:-artifacts/fuzz}
build=$work/build
dotnet build tests/TrustedProxy.Fuzz -c Release -o "$build" --nologo -v quiet -clp:NoSummary >/dev/null
corpus=tests/TrustedProxy.Fuzz/corpus/$target

if [ "$mode" = replay ]; then
  exec dotnet "$build/TrustedProxy.Fuzz.dll" replay "$target" "$@"
elif [ "$mode" = seed ]; then
  exec dotnet "$build/TrustedProxy.Fuzz.dll" seed "$target" "$corpus"
fi

if ! command -v afl-fuzz >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
  else
    echo "tools/fuzz.sh: afl-fuzz is missing; sudo apt-get install afl++" >&2; exit 1
  fi
fi
dotnet tool restore >/dev/null

# A copy per target, instrumented once: instrumenting is in place and must not be done twice.
bin=$work/$target/bin
if [ ! -f "$bin/.instrumented" ] || [ "$build/TrustedProxy.Fuzz.dll" -nt "$bin/.instrumented" ]; then
  rm -rf "$bin"; mkdir -p "$bin"; cp -r "$build/." "$bin/"
  for assembly in "${instrument[@]}"; do dotnet sharpfuzz "$bin/$assembly" >/dev/null; done
  touch "$bin/.instrumented"
fi

findings=$work/$target/findings
if [ "$resume" = 1 ] && [ -d "$findings/default" ]; then input=-; else rm -rf "$findings"; input=$corpus; fi
mkdir -p "$findings"

# dotnet is not an AFL-instrumented binary (SharpFuzz's fork server is in the managed code);
# the machine's core pattern and CPU governor are not the campaign's business; no UI in a log.
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
# -t: a .NET input may pay for JIT on a new path; 2 s is a hang nonetheless.
# -m none: the runtime reserves far more address space than it uses; the harness's limits bound memory.
exec afl-fuzz -i "$input" -o "$findings" -t 2000 -m none "${limit[@]}" -- dotnet "$bin/TrustedProxy.Fuzz.dll" fuzz "$target"
