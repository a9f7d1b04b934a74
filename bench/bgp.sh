#!/usr/bin/env bash
# BGP scale, as root in a private network namespace (unshare -n):
#  1. receive: a BGP speaker announces N blacklist routes to spfd; time
#     until all are in spfd's state (show rib) and table file; spfd's RSS;
#  2. announce: spfd announces N entries of a blacklist file to OpenBGPD
#     (Debian package openbgpd); time until bgpctl sees them all.
#   bench/bgp.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
if [ -z "${SPFD_BENCH_NS:-}" ]; then
	exec unshare -n env SPFD_BENCH_NS=1 "$0" "$@"
fi
ip link set lo up
out=$(mktemp -d /tmp/spfd-bgp-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$out"' EXIT
go build -o "$out/spfd" ./cmd/spfd
go build -o "$out/spfctl" ./cmd/spfctl
go build -o "$out/bgppeer" ./bench/bgppeer
ms() { date +%s%3N; }

echo "== receive $n routes"
cat > "$out/recv.conf" <<CONF
state-directory "$out/recv"
socket "$out/recv.sock"
resolver 127.0.0.1:1
bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.3 as 65066 local-address 127.0.0.2
CONF
"$out/spfd" -d -f "$out/recv.conf" 2> "$out/recv.log" & spfd_pid=$!
until "$out/spfctl" -s "$out/recv.sock" show status >/dev/null 2>&1; do sleep 0.05; done
t0=$(ms)
"$out/bgppeer" -n "$n" -addr 127.0.0.3 -peer 127.0.0.2 2> "$out/peer.log" & peer_pid=$!
until [ "$("$out/spfctl" -s "$out/recv.sock" show rib | wc -l)" -ge "$n" ]; do sleep 0.1; done
t1=$(ms)
until [ -f "$out/recv/black.txt" ] && [ "$(wc -l < "$out/recv/black.txt")" -ge "$n" ]; do sleep 0.05; done
t2=$(ms)
echo "all $n routes in spfd's RIB after $((t1 - t0)) ms, in the table file after $((t2 - t0)) ms"
echo "spfd peak RSS $(awk '/VmHWM/ {print $2, $3}' /proc/$spfd_pid/status)"
kill $peer_pid $spfd_pid; wait $peer_pid $spfd_pid 2>/dev/null || true

if command -v bgpd >/dev/null; then
	echo "== announce $n routes to OpenBGPD"
	mkdir -p /run/openbgpd
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "10.%d.%d.%d\n", int(i / 32768), int(i / 128) % 256, 2 * (i % 128) + 1 }' > "$out/list.txt"
	cat > "$out/bgpd.conf" <<CONF
AS 65066
router-id 127.0.0.4
listen on 127.0.0.4
fib-update no
socket "$out/bgpd.sock"
neighbor 127.0.0.2 {
	remote-as 65001
	local-address 127.0.0.4
}
allow from any
allow to any
CONF
	bgpd -d -f "$out/bgpd.conf" > "$out/bgpd.log" 2>&1 &
	until bgpctl -s "$out/bgpd.sock" show summary >/dev/null 2>&1; do sleep 0.1; done
	cat > "$out/ann.conf" <<CONF
state-directory "$out/ann"
socket "$out/ann.sock"
resolver 127.0.0.1:1
blacklist-file "$out/list.txt"
bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.4 as 65066 local-address 127.0.0.2
bgp announce { black }
CONF
	t0=$(ms)
	"$out/spfd" -d -f "$out/ann.conf" 2> "$out/ann.log" &
	until [ "$(bgpctl -s "$out/bgpd.sock" show rib community 65066:666 2>/dev/null | grep -c '/32')" -ge "$n" ]; do sleep 0.2; done
	t1=$(ms)
	echo "all $n routes in OpenBGPD's RIB $((t1 - t0)) ms after spfd started"
fi
