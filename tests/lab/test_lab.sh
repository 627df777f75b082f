#!/usr/bin/env bash
# The lab's command-line tool: replay parser errors on malformed traces,
# replay of hand-written and shipped traces, `ptkit bench --quick --json`
# producing valid JSON of schema ptkit-bench/1, usage errors, and (where the
# tools exist) `ptkit plot` and `ptkit trace record`.
# Usage: test_lab.sh PTKIT_BINARY
set -uo pipefail
ptkit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
ok()   { passed=$((passed + 1)); echo "ok   $*"; }
bad()  { failed=$((failed + 1)); echo "FAIL $*"; }

# expect_error NAME EXPECTED_STATUS EXPECTED_STDERR_SUBSTRING -- COMMAND...
expect_error() {
  local name=$1 want=$2 msg=$3; shift 4
  "$@" >"$work/out" 2>"$work/err"; local st=$?
  if [ "$st" -ne "$want" ]; then bad "$name: exit $st, want $want ($(head -c 300 "$work/err"))"; return; fi
  if ! grep -qF -- "$msg" "$work/err"; then bad "$name: stderr lacks '$msg': $(head -c 300 "$work/err")"; return; fi
  ok "$name"
}

# ---- malformed traces: FILE:LINE: reason, exit 1 ----------------------------
mal() {  # mal NAME LINE REASON  (trace body on stdin)
  local f="$work/$1.trace"; cat >"$f"
  expect_error "malformed: $1" 1 "$f:$2: $3" -- "$ptkit" replay "$f"
}
printf 'not a trace\n' | mal magic 1 "not a ptkit trace"
: | mal empty 1 "empty file"
printf 'ptkit-trace 1\n0 1 exec\n5 1 frobnicate 0x1000\n' | mal unknown-op 3 "unknown operation 'frobnicate'"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1000 0x1000 rw-\n' | mal few-args 3 "'map' takes 4 arguments, got 3"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1001 0x1000 rw- anon\n' | mal unaligned 3 "address is not page aligned"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1000 0 rw- anon\n' | mal zero-len 3 "length is zero"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1000 0x1000 rwz anon\n' | mal prot 3 "protection must be"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1000 0x1000 rw- weird\n' | mal kind 3 "kind must be"
printf 'ptkit-trace 1\n0 1 exec\n1 1 map 0x1000 0x1g00 rw- anon\n' | mal number 3 "bad number '0x1g00'"
printf 'ptkit-trace 1\n0 1 exec\n# comment\n\n1 1 map 0x800000000000 0x1000 rw- anon\n' | mal range 5 "range is outside the 47-bit user half"
printf 'ptkit-trace 1\n5 1 exec\n4 1 exit\n' | mal backwards 3 "time 4 goes backwards"
printf 'ptkit-trace 1\n0 x exec\n' | mal pid 2 "bad pid 'x'"
printf 'ptkit-trace 1\n0 1 exec\n1 1 fork 1 copy\n' | mal fork-alive 3 "child pid 1 is already alive"
printf 'ptkit-trace 1\n0 1 exec\n1 1 fork 2 spoon\n' | mal fork-mode 3 "fork mode must be"
printf 'ptkit-trace 1\n0 1 exec\n1 1 exit\n2 1 fault 0x1000 w\n' | mal after-exit 4 "pid 1 used after its exit"
printf 'ptkit-trace 1\n0 1 exec\n1 1 fault 0x1000 q\n' | mal access 3 "access must be"
printf 'ptkit-trace 1\n0 1\n' | mal short 2 "expected 'TIME PID OP ...'"
expect_error "missing trace file" 1 "No such file" -- "$ptkit" replay "$work/nope.trace"

# ---- a hand-written trace replays exactly ----------------------------------
cat >"$work/good.trace" <<'T'
ptkit-trace 1
# command: hand written
# faults: yes
0 100 exec
1 100 map 0x10000000 0x10000 rw- anon
2 100 fault 0x10000000 w
3 100 fault 0x10001008 -
4 100 fault 0x1000f000 r
5 100 brk 0x20000000 0x20003000
6 100 fault 0x20002000 w
7 100 protect 0x10000000 0x1000 r--
8 100 fault 0x10000000 w
9 100 advise 0x10001000 0x1000 dontneed
10 100 fork 101 copy
11 101 fault 0x10002000 w
12 101 remap 0x10001000 0xf000 0x30000000 0x20000
13 101 fault 0x3001f000 w
14 101 exit
15 100 fork 102 share
16 102 exec
17 102 map 0x40000000 0x2000 rw- file
18 102 fault 0x40001000 w
19 102 exit
20 100 unmap 0x10000000 0x10000
21 100 fault 0x10000000 r
22 100 exit
T
if "$ptkit" replay --repeat 1 "$work/good.trace" >"$work/out" 2>"$work/err"; then
  want() { grep -qE "^  $1 +$2\$" "$work/out" && ok "good trace: $1 = $2" || bad "good trace: $1 != $2: $(grep -E "$1" "$work/out")"; }
  want "faults replayed" 7
  want "faults refused \(no mapping/prot\)" 2
  want "address spaces created" 3
  want "forks" 2
  want "execs" 2
  want "exits" 3
  grep -q "every frame is back in the pool" "$work/out" && ok "good trace: frame accounting" || bad "good trace: frame accounting"
else
  bad "good trace: replay failed: $(cat "$work/err")"
fi

# ---- the shipped traces ---------------------------------------------------------
for t in cc python3; do
  if "$ptkit" replay --repeat 1 --copies 3 --threads 2 "$t" >"$work/out" 2>"$work/err" &&
     grep -qE "^  execs +$(( $(grep -c ' exec$' "$PTKIT_TRACES/$t.trace") * 3 ))\$" "$work/out" &&
     grep -qE "^  faults refused \(no mapping/prot\) +0$" "$work/out" &&
     grep -q "every frame is back in the pool" "$work/out"; then
    ok "shipped trace $t: 3 copies on 2 threads, every fault mapped, frames back"
  else
    bad "shipped trace $t: $(cat "$work/err") $(grep -E 'refused|accounting' "$work/out")"
  fi
done

# ---- bench --quick --json: valid JSON, schema ptkit-bench/1 --------------------
if "$ptkit" bench --quick --repeat 1 --seed 7 --json -o "$work/r.json" peers replay >"$work/out" 2>"$work/err"; then
  if python3 -m json.tool "$work/r.json" >/dev/null 2>"$work/jerr"; then
    ok "bench --json: valid JSON"
  else
    bad "bench --json: invalid JSON: $(cat "$work/jerr")"
  fi
  if python3 - "$work/r.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "ptkit-bench/1", d["schema"]
assert isinstance(d["seed"], int) and d["seed"] == 7 and d["repeat"] == 1
need = {"scenario": str, "design": str, "params": dict, "params_key": str, "metric": str,
        "unit": str, "runs": int}
assert d["measurements"], "no measurements"
for m in d["measurements"]:
    for k, t in need.items():
        assert isinstance(m[k], t), (k, m)
    for k in ("median", "min", "max"):
        assert m[k] is None or isinstance(m[k], (int, float)), (k, m)
    assert m["min"] <= m["median"] <= m["max"], m
    for v in m["params"].values():
        assert isinstance(v, (int, float, str)), m
assert d["comparisons"], "no comparisons"
designs = {(m["scenario"], m["design"]) for m in d["measurements"]}
for c in d["comparisons"]:
    assert c["better"] in ("higher", "lower"), c
    assert (c["scenario"], c["a"]) in designs and (c["scenario"], c["b"]) in designs, c
    assert abs(c["ratio"] - c["a_median"] / c["b_median"]) <= 1e-3 * abs(c["ratio"]), c
    assert c["a_better"] == (c["ratio"] > 1 if c["better"] == "higher" else c["ratio"] < 1), c
peers = {m["design"] for m in d["measurements"] if m["scenario"] == "peers"}
assert {"ptkit", "ptkit-walk", "raw-walk", "rwlock-radix", "urcu-lfht"} <= peers, peers
threads = [m["params"]["threads"] for m in d["measurements"] if "threads" in m["params"]]
assert all(isinstance(t, int) for t in threads), threads
PY
  then ok "bench --json: schema fields, ratios, params types"; else bad "bench --json: schema check"; fi
else
  bad "bench --quick --json failed: $(cat "$work/err")"
fi
"$ptkit" bench --quick --repeat 1 --csv peers >"$work/r.csv" 2>/dev/null &&
  head -1 "$work/r.csv" | grep -q '^record,scenario,' && grep -q '^comparison,peers,' "$work/r.csv" &&
  ok "bench --csv" || bad "bench --csv"
"$ptkit" bench --list >"$work/out" && grep -q '^peers ' "$work/out" && grep -q '^replay ' "$work/out" &&
  ok "bench --list" || bad "bench --list"

# ---- usage errors: exit 2 -----------------------------------------------------------
expect_error "replay without a trace" 2 "no trace given" -- "$ptkit" replay
expect_error "replay --copies 0" 2 "--copies" -- "$ptkit" replay --copies 0 cc
expect_error "bench unknown scenario" 2 "unknown scenario" -- "$ptkit" bench nosuch
expect_error "bench --threads 0" 2 "--threads" -- "$ptkit" bench --threads 0
expect_error "plot without results" 2 "expected one results file" -- "$ptkit" plot
expect_error "trace without subcommand" 2 "usage" -- "$ptkit" trace
expect_error "trace record without command" 2 "no command given" -- "$ptkit" trace record
for c in bench plot trace replay demo; do
  "$ptkit" "$c" --help >/dev/null 2>&1 && ok "$c --help" || bad "$c --help"
done
printf '{"schema": "other/1"}' >"$work/other.json"
expect_error "plot: wrong schema" 1 "not ptkit bench results" -- "$ptkit" plot -o "$work/p" "$work/other.json"
printf '{"schema": "ptkit-bench/1",\n "measurements": [1,]}' >"$work/broken.json"
expect_error "plot: broken JSON" 1 "broken.json:2: not valid JSON" -- "$ptkit" plot -o "$work/p" "$work/broken.json"

# ---- plot (needs gnuplot) --------------------------------------------------------------
if command -v gnuplot >/dev/null && [ -f "$work/r.json" ]; then
  if "$ptkit" plot -o "$work/plots" "$work/r.json" >"$work/out" 2>"$work/err" &&
     [ -s "$work/plots/ratios.png" ] && [ -s "$work/plots/peers-lookups_s.png" ] &&
     head -c 8 "$work/plots/ratios.png" | grep -q PNG; then
    ok "plot: PNG scaling curve and ratio bars"
  else
    bad "plot: $(cat "$work/err")"
  fi
else
  echo "skip plot (gnuplot not installed)"
fi

# ---- trace record (needs strace; perf optional) -----------------------------------------
if command -v strace >/dev/null; then
  if (cd "$work" && "$ptkit" trace record -o rec.trace -- sh -c 'true; ls / >/dev/null') 2>"$work/err" &&
     head -1 "$work/rec.trace" | grep -q '^ptkit-trace 1$' &&
     grep -q ' fork ' "$work/rec.trace" && grep -q ' exec$' "$work/rec.trace" &&
     "$ptkit" replay --repeat 1 "$work/rec.trace" >"$work/out" 2>>"$work/err" &&
     grep -q "every frame is back in the pool" "$work/out"; then
    ok "trace record -- sh -c ...; replay it ($(grep -c ' fault ' "$work/rec.trace") faults)"
  else
    bad "trace record: $(cat "$work/err")"
  fi
  expect_error "trace record of a missing program" 1 "nothing was recorded" -- \
    "$ptkit" trace record --no-faults -o "$work/none.trace" -- "$work/no-such-program"
else
  echo "skip trace record (strace not installed)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
