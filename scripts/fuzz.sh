#!/usr/bin/env bash
# Differential fuzzing of address spaces against the reference model.
#   scripts/fuzz.sh [SECONDS]     (default 120)
# Builds the libFuzzer target with clang (build dir build-clang, contract
# checks on), runs it for SECONDS on a scratch copy of the committed corpus
# (tests/fuzz/corpus) plus the regression inputs, then replays the corpus and
# every regression input.  A crash is written to build-clang/fuzz-crashes/
# and the script fails: minimise it, add it to tests/fuzz/regressions/ with a
# line in its README.md, and fix the bug.
# Prints "N passed, M failed" last.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
case "$secs" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac
dir=build-clang
if [ -d "$dir" ]; then CC=clang meson setup --reconfigure "$dir" -Dcontracts=true >/dev/null
else CC=clang meson setup "$dir" -Dcontracts=true >/dev/null; fi || exit 1
ninja -C "$dir" tests/fuzz_as_fuzzer >"$dir/fuzz-build.log" 2>&1 || { tail -30 "$dir/fuzz-build.log"; echo "0 passed, 1 failed"; exit 1; }
fuzzer=$dir/tests/fuzz_as_fuzzer
work=$dir/fuzz-corpus crashes=$dir/fuzz-crashes
rm -rf "$work"; mkdir -p "$work" "$crashes"
for f in tests/fuzz/corpus/* tests/fuzz/regressions/*; do
  case "$(basename "$f")" in README*) ;; *) cp "$f" "$work"/ ;; esac
done
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
passed=0; failed=0
echo "==> fuzz_as for ${secs}s"
if "$fuzzer" -max_total_time="$secs" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
     -artifact_prefix="$crashes/" -print_final_stats=1 "$work" >"$dir/fuzz.log" 2>&1; then
  passed=$((passed + 1)); grep -E "^stat::number_of_executed_units|^stat::peak_rss" "$dir/fuzz.log"
else
  failed=$((failed + 1)); tail -40 "$dir/fuzz.log"; ls "$crashes"
fi
echo "==> replay corpus and regressions"
inputs=()
for f in tests/fuzz/corpus/* tests/fuzz/regressions/*; do
  case "$(basename "$f")" in README*) ;; *) inputs+=("$f") ;; esac
done
if "$fuzzer" -runs=0 "${inputs[@]}" >"$dir/fuzz-replay.log" 2>&1; then
  passed=$((passed + 1)); echo "replayed ${#inputs[@]} inputs"
else
  failed=$((failed + 1)); tail -20 "$dir/fuzz-replay.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
