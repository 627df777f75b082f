#!/usr/bin/env bash
# Install what ptkit needs on Debian 12, if missing.  Safe to run twice.
# Usage: scripts/deps.sh [lab|test|record]
#   lab     the lab: plots (gnuplot), the UCX peer of `ptkit bench peers`
#   test    the test suite
#   record  `ptkit trace record` (strace; perf for page faults); replaying
#           traces needs neither
set -euo pipefail
want=(meson ninja-build pkg-config gcc libc6-dev liburcu-dev)
case "${1:-test}" in
  test) want+=(libcmocka-dev clang libclang-rt-14-dev libtsan2 libasan8 libubsan1 spin python3) ;;
  lab)  want+=(gnuplot-nox libucx-dev) ;;
  record) want+=(strace linux-perf) ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ptkit: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ptkit: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
