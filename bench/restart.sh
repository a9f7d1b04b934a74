#!/usr/bin/env bash
# The nftables backend with N (default 1 000 000) addresses in a list, as
# root in a private network namespace: the fill, a restart the mark proves
# (nothing read back), a restart after a foreign commit (everything added
# again at once, then read back in the background for leftovers), and one
# add while a background read runs.
#   bench/restart.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -n)" >&2; exit 1; }
SPFD_BENCH_N=${1:-1000000} go test -run XXX -bench NFTablesRestart -benchtime 1x -timeout 2h ./pftable
