#!/usr/bin/env bash
# check.sh -- model-check the ptkit protocol models with spin.
#
# For every (model, variant) pair: spin -a, compile pan, run it, and compare
# the outcome with the expectation:
#   verify  -> pan must report "errors: 0" and a complete search
#   fail=S  -> pan must report errors > 0 caused by a violation of an
#              assertion whose text contains S (the intended one, not some
#              other bug); the trail replay is printed with -v
#
# Usage: models/check.sh [-v] [-k]
#   -v  print the replayed counterexample trail of every expected failure
#   -k  keep the scratch directory (its path is printed)
# Prints one line per check and a final "N passed, M failed"; exits non-zero
# if any expectation is not met.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
verbose=0
keep=0
while getopts "vk" opt; do
	case $opt in
	v) verbose=1 ;;
	k) keep=1 ;;
	*) echo "usage: $0 [-v] [-k]" >&2; exit 2 ;;
	esac
done

# --- spin -----------------------------------------------------------------
sudo_if_needed() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v spin >/dev/null 2>&1; then
	echo "spin not found; installing the Debian package 'spin'" >&2
	if ! sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y spin >&2; then
		sudo_if_needed apt-get update >&2
		sudo_if_needed env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y spin >&2
	fi
fi
command -v spin >/dev/null 2>&1 || { echo "spin is not available" >&2; exit 1; }
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || { echo "no C compiler ($CC)" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
	if [ "$keep" -eq 1 ]; then
		echo "scratch directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

passed=0
failed=0
tab=$(printf '\t')

# check NAME MODEL EXPECT [DEFINES...]
#   EXPECT is "verify" or "fail=SUBSTRING-OF-THE-VIOLATED-ASSERTION"
check() {
	local name=$1 model=$2 expect=$3
	shift 3
	local label="${model%.pml} $name"
	local dir="$work/${model%.pml}-${name// /_}"
	mkdir -p "$dir"
	cp "$here/$model" "$dir/"

	local out="$dir/pan.out"
	if ! (cd "$dir" && spin "$@" -a "$model") >"$dir/spin.log" 2>&1; then
		echo "$label: FAILED (spin -a rejected the model)"
		sed 's/^/    /' "$dir/spin.log"
		failed=$((failed + 1))
		return
	fi
	# pan.c is generated code: its warnings are not ours, so -w.
	if ! (cd "$dir" && "$CC" -O2 -w -DSAFETY -o pan pan.c) \
		>"$dir/cc.log" 2>&1; then
		echo "$label: FAILED (pan did not compile)"
		sed 's/^/    /' "$dir/cc.log"
		failed=$((failed + 1))
		return
	fi
	# -m: search depth bound, far above the models' depth (< 100).
	(cd "$dir" && ./pan -m100000) >"$out" 2>&1 || true

	local errors states
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)
	states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' "$out" |
		tail -n 1)
	if [ -z "$errors" ] || [ -z "$states" ]; then
		echo "$label: FAILED (could not read pan's report)"
		sed 's/^/    /' "$out"
		failed=$((failed + 1))
		return
	fi

	case $expect in
	verify)
		if [ "$errors" -eq 0 ] &&
			! grep -q "max search depth too small" "$out"; then
			echo "$label: verified ($states states)"
			passed=$((passed + 1))
		else
			echo "$label: FAILED (expected to verify, got errors: $errors)"
			(cd "$dir" && spin "$@" -t "$model") 2>&1 |
				sed 's/^/    /' | head -n 40 || true
			failed=$((failed + 1))
		fi
		;;
	fail=*)
		local want=${expect#fail=} what
		what=$(grep -m 1 "assertion violated" "$out" |
			sed 's/^pan:[0-9]*: //; s/ (at depth.*//' || true)
		if [ "$errors" -gt 0 ] && [ -n "$what" ] &&
			[[ $what == *"$want"* ]]; then
			echo "$label: counterexample found (expected): $what ($states states)"
			passed=$((passed + 1))
			if [ "$verbose" -eq 1 ]; then
				(cd "$dir" && spin "$@" -t "$model") 2>&1 |
					grep -Ev -e '^[[:space:]]*$' -e "^$tab" \
						-e 'proc |#processes|processes created' |
					sed 's/^ */    /' || true
			fi
		else
			echo "$label: FAILED (expected a violation of '$want'," \
				"got errors: $errors${what:+: $what})"
			failed=$((failed + 1))
		fi
		;;
	*)
		echo "check: bad expectation $expect" >&2
		exit 2
		;;
	esac
}

# late_init: creator (publish; mb; read reference) vs extender
# (write reference; mb; walk registry) under TSO with store buffers.
check "correct"                       late_init.pml verify
check "NO_CREATOR_MB"                 late_init.pml fail="==mem[k]" -DNO_CREATOR_MB
check "NO_EXTENDER_MB"                late_init.pml fail="==mem[k]" -DNO_EXTENDER_MB
check "WMB_ONLY"                      late_init.pml fail="==mem[k]" -DWMB_ONLY
check "REACH"                         late_init.pml fail=creator_saw_empty -DREACH
check "correct TWO_EXTENDERS"         late_init.pml verify -DTWO_EXTENDERS
check "NO_CREATOR_MB TWO_EXTENDERS"   late_init.pml fail="==mem[k]" \
	-DTWO_EXTENDERS -DNO_CREATOR_MB
check "NO_EXTENDER_MB TWO_EXTENDERS"  late_init.pml fail="==mem[k]" \
	-DTWO_EXTENDERS -DNO_EXTENDER_MB
check "WMB_ONLY TWO_EXTENDERS"        late_init.pml fail="==mem[k]" \
	-DTWO_EXTENDERS -DWMB_ONLY

# walker_rcu: lockless walker vs detach + call_rcu free.
check "correct"                       walker_rcu.pml verify
check "NO_GRACE_PERIOD"               walker_rcu.pml fail="tstate==0" -DNO_GRACE_PERIOD
check "RELOAD"                        walker_rcu.pml fail="e==1" -DRELOAD
check "REACH"                         walker_rcu.pml fail="tstate!=1" -DREACH

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
