#!/usr/bin/env bash
# The whole test suite: install what is missing, build, run.
#   release build:        unit + stress tests
#   debug + ASan/UBSan:   unit + stress tests (contract checks, poisoning)
#   TSan:                 the concurrency (stress) tests
#   clang:                -Werror build, then the libFuzzer differential
#                         fuzzer for a bounded time + corpus replay
#                         (scripts/fuzz.sh; FUZZ_SECONDS, default 60)
#   spin:                 the protocol models (models/check.sh)
# Prints "N passed, M failed" last; exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1

passed=0; failed=0; failures=()
step() {  # step NAME COMMAND...
  local name=$1; shift
  echo "==> $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}
setup() {  # setup DIR OPTIONS...
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null
  else meson setup "$dir" "$@" >/dev/null; fi && ninja -C "$dir" >/dev/null
}
mtest() { meson test -C "$@" --print-errorlogs --num-processes 2; }
asan_tests() {
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 mtest build-asan
}
clang_build() { CC=clang setup build-clang -Dcontracts=true; }
tsan_tests() {
  TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" mtest build-tsan --suite stress
}

step "build release"        setup build
step "tests release"        mtest build
step "build asan+ubsan"     setup build-asan -Dcontracts=true -Db_sanitize=address,undefined -Db_lundef=false
step "tests asan+ubsan"     asan_tests
step "build tsan"           setup build-tsan -Dcontracts=true -Db_sanitize=thread -Db_lundef=false
step "tests tsan (stress)"  tsan_tests
step "build clang -Werror"  clang_build
step "fuzz (${FUZZ_SECONDS:-60} s) + replay" scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
if [ -x models/check.sh ]; then
  step "protocol models"    models/check.sh
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
