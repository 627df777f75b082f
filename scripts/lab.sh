#!/usr/bin/env bash
# The lab's default run: install what is missing, build, replay the shipped
# traces of real programs, then run the default benchmark suite (about two
# minutes) and print its comparison table.  The JSON results and plots go
# to lab-results/ (plots need gnuplot, installed by scripts/deps.sh lab).
# With arguments, runs `ptkit ARGS...` instead (e.g. scripts/lab.sh demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh lab
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null
if [ $# -gt 0 ]; then exec build/tools/ptkit "$@"; fi
mkdir -p lab-results
echo "== ptkit replay cc python3 (real programs' address spaces, replayed)"
build/tools/ptkit replay cc python3
echo
echo "== ptkit bench (default suite)"
build/tools/ptkit bench --save lab-results/results.json
if command -v gnuplot >/dev/null; then
  echo
  echo "== plots"
  build/tools/ptkit plot -o lab-results lab-results/results.json
fi
