#!/usr/bin/env bash
# Re-record the shipped traces (needs strace, and perf for the faults:
# scripts/deps.sh record).  Usage: lab/traces/record.sh [PTKIT_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ptkit=${1:-$here/../../build/tools/ptkit}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/hello.c" "$work/"
cd "$work"
"$ptkit" trace record -o "$here/cc.trace" -- cc -O2 -c hello.c -o hello.o
"$ptkit" trace record -o "$here/python3.trace" -- /usr/bin/python3 -c pass
