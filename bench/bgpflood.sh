#!/usr/bin/env bash
# A flooding BGP peer, as root in a private network namespace: bgppeer
# announces and withdraws N /32 blacklist routes in a loop for D seconds,
# first to spfd, then to OpenBGPD (Debian package openbgpd) in the same
# role; prints each one's peak RSS and the ratio.
#   bench/bgpflood.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
secs=${2:-30}
if [ -z "${SPFD_BENCH_NS:-}" ]; then
	exec unshare -n env SPFD_BENCH_NS=1 "$0" "$@"
fi
ip link set lo up
out=$(mktemp -d /tmp/spfd-bgpflood.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$out"' EXIT
go build -o "$out/spfd" ./cmd/spfd
go build -o "$out/spfctl" ./cmd/spfctl
go build -o "$out/bgppeer" ./bench/bgppeer
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

cat > "$out/spfd.conf" <<CONF
state-directory "$out/state"
socket "$out/spfd.sock"
resolver 127.0.0.1:1
bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.3 as 65066 local-address 127.0.0.2
CONF
"$out/spfd" -d -f "$out/spfd.conf" 2> "$out/spfd.log" & spfd_pid=$!
until "$out/spfctl" -s "$out/spfd.sock" show status >/dev/null 2>&1; do sleep 0.05; done
"$out/bgppeer" -n "$n" -addr 127.0.0.3 -peer 127.0.0.2 -flap "${secs}s" 2> "$out/peer.log" & peer_pid=$!
sleep "$secs"; sleep 2
spfd_kb=$(hwm $spfd_pid)
echo "spfd: peak RSS ${spfd_kb} kB after ${secs}s of flapping $n routes ($(tail -1 "$out/peer.log" | cut -d' ' -f3-))"
kill $peer_pid $spfd_pid; wait $peer_pid $spfd_pid 2>/dev/null || true

command -v bgpd >/dev/null || { echo "bgpd not installed: no comparison"; exit 0; }
mkdir -p /run/openbgpd
cat > "$out/bgpd.conf" <<CONF
AS 65001
router-id 127.0.0.4
listen on 127.0.0.4
fib-update no
socket "$out/bgpd.sock"
neighbor 127.0.0.3 {
	remote-as 65066
	local-address 127.0.0.4
}
allow from any
allow to any
CONF
bgpd -d -f "$out/bgpd.conf" > "$out/bgpd.log" 2>&1 & bgpd_pid=$!
until bgpctl -s "$out/bgpd.sock" show summary >/dev/null 2>&1; do sleep 0.1; done
"$out/bgppeer" -n "$n" -addr 127.0.0.3 -peer 127.0.0.4 -flap "${secs}s" 2> "$out/peer2.log" & peer_pid=$!
sleep "$secs"; sleep 2
bgpd_kb=0
for p in $bgpd_pid $(pgrep -P $bgpd_pid); do bgpd_kb=$((bgpd_kb + $(hwm "$p"))); done
echo "bgpd: peak RSS ${bgpd_kb} kB, all its processes ($(tail -1 "$out/peer2.log" | cut -d' ' -f3-))"
kill $peer_pid; wait $peer_pid 2>/dev/null || true
echo "ratio spfd/bgpd: $(awk -v a="$spfd_kb" -v b="$bgpd_kb" 'BEGIN { printf "%.2f", a / b }')"
