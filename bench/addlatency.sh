#!/usr/bin/env bash
# How long an spfctl add takes to reach the kernel when the blacklist holds
# N entries (default 1 000 000), with the nftables backend, as root in a
# private network namespace: spfd starts on a state of N entries, fills
# the sets, then M adds are timed from spfctl add to the end of the sync
# that committed them, as spfd -v logs it ("tables synced"; nft get
# element and nft monitor would themselves read the whole set first,
# which takes minutes at a million).
# With "stats" as the third argument, spfctl show stats -v runs in a loop
# meanwhile (each one sums the element counters: a read of every set).
# With "reconcile", spfd is restarted after a foreign commit, so the
# kernel's content is unknown: it adds the lists whole, then reads the
# sets back in the background while the adds are timed; each add also
# asks show status whether that read still runs.
#   bench/addlatency.sh [N] [M] [stats|reconcile]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -n)" >&2; exit 1; }
if [ "${SPFD_BENCH_NS:-}" != 1 ]; then
	exec unshare -n env SPFD_BENCH_NS=1 "$0" "$@"
fi
n=${1:-1000000}
m=${2:-20}
during=${3:-}
out=bench/out/addlatency
rm -rf "$out"; mkdir -p "$out"
out=$(cd "$out" && pwd)
go build -o "$out/spfd" ./cmd/spfd
go build -o "$out/spfctl" ./cmd/spfctl
go run ./bench/stategen -n "$n" -dir "$out/state"
cat > "$out/spfd.conf" <<CONF
state-directory "$out/state"
socket "$out/spfd.sock"
resolver 127.0.0.1:1
table white nftables "white"
table black nftables "black"
nftables-table "spfdlat"
CONF
ms() { date +%s%3N; }
t0=$(ms)
"$out/spfd" -d -v -f "$out/spfd.conf" 2> "$out/spfd.log" & pid=$!
trap 'kill $pid 2> /dev/null || true' EXIT
until "$out/spfctl" -s "$out/spfd.sock" show status > /dev/null 2>&1; do sleep 0.01; done
echo "ready after $(($(ms) - t0)) ms"
until "$out/spfctl" -s "$out/spfd.sock" show status | grep -q "in sync"; do sleep 0.1; done
echo "sets filled after $(($(ms) - t0)) ms"
# The time of the first "tables synced" after a given moment, in ms.
synced_after() {
	awk -v after="$1" '/msg="tables synced"/ {
		match($0, /ts=[^ ]+/); ts = substr($0, RSTART + 3, RLENGTH - 3)
		cmd = "date -d " ts " +%s%3N"; cmd | getline t; close(cmd)
		if (t >= after) { print t; exit }
	}' "$out/spfd.log"
}
if [ "$during" = reconcile ]; then
	kill $pid; wait $pid 2> /dev/null || true
	nft add table inet spfdlatforeign # the generation moves: the mark proves nothing
	t0=$(ms)
	"$out/spfd" -d -v -f "$out/spfd.conf" 2> "$out/spfd.log" & pid=$!
	until "$out/spfctl" -s "$out/spfd.sock" show status 2> /dev/null | grep -q "in sync"; do sleep 0.05; done
	echo "restarted with unknown kernel content: in sync after $(($(ms) - t0)) ms"
fi
during_read=0
if [ "$during" = stats ]; then
	(while :; do "$out/spfctl" -s "$out/spfd.sock" show stats -v > /dev/null 2>&1 || true; done) & statspid=$!
	trap 'kill $pid $statspid 2> /dev/null || true' EXIT
	sleep 1
fi
took=()
for i in $(seq "$m"); do
	a="198.18.$((i / 250)).$((i % 250 + 1))"
	t0=$(ms)
	"$out/spfctl" -s "$out/spfd.sock" add black "$a" > /dev/null
	t1=""
	until [ -n "$t1" ]; do sleep 0.02; t1=$(synced_after "$t0"); done
	took+=($((t1 - t0)))
	if [ "$during" = reconcile ] && "$out/spfctl" -s "$out/spfd.sock" show status | grep -q "^reading back"; then
		during_read=$((during_read + 1))
	fi
	sleep 0.2
done
sorted=$(printf '%s\n' "${took[@]}" | sort -n)
pick() { echo "$sorted" | sed -n "$(( ($1 * m + 99) / 100 ))p"; }
echo "each add, ms: $(echo $sorted)"
[ "$during" = reconcile ] && echo "$during_read of $m adds ended while the sets were still being read back"
echo "$m adds at $n entries${during:+ during $during}: median $(pick 50) ms, p99 $(pick 99) ms, worst $(echo "$sorted" | tail -1) ms, from spfctl add to the sync that committed it"
echo "spfd peak RSS $(awk '/VmHWM/ { print $2, $3 }' /proc/$pid/status), now $(awk '/VmRSS/ { print $2, $3 }' /proc/$pid/status)"
