#!/usr/bin/env bash
# The lab's default run: install what is missing, build, run the demo.
# Extra arguments go to `ptkit` (default: `ptkit demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh lab
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null
if [ $# -eq 0 ]; then set -- demo; fi
exec build/tools/ptkit "$@"
