#!/usr/bin/env bash
# Walk a synthetic zone of N apexes (default 10000) served by NSD, with
# spfctl walk and, side by side, OpenSMTPD's `smtpctl spf walk`.
# Needs root (NSD on port 53 of 127.0.0.53 for smtpctl, which only reads
# /etc/resolv.conf; unshare -m bind-mounts one pointing there) and the
# Debian packages nsd and opensmtpd. NSD's response rate limiting is
# turned off: one client asking 60 000 questions is the point here.
#   bench/walk.sh [N] [-simple]
# -simple gives every apex only ip4 and include terms, the work both
# walkers do alike, for a like-for-like time.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
mode=${2:-}
addr=127.0.0.53
out=bench/out/walk
rm -rf "$out"; mkdir -p "$out/run"
out=$(cd "$out" && pwd)

for bin in nsd smtpctl; do
	command -v "$bin" >/dev/null || { echo "need $bin (apt-get install nsd opensmtpd)" >&2; exit 1; }
done
go run ./bench/spfzone -n "$n" -dir "$out" $mode
go build -o "$out/spfctl" ./cmd/spfctl

cat > "$out/nsd.conf" <<CONF
server:
	ip-address: $addr@53
	username: ""
	chroot: ""
	zonesdir: "$out"
	database: ""
	zonelistfile: "$out/run/zone.list"
	pidfile: "$out/run/nsd.pid"
	xfrdfile: "$out/run/xfrd.state"
	xfrdir: "$out/run"
	logfile: "$out/run/nsd.log"
	server-count: 1
	rrl-ratelimit: 0
	tcp-count: 512
remote-control:
	control-enable: no
zone:
	name: "bench.test"
	zonefile: "bench.test.zone"
CONF
nsd -d -c "$out/nsd.conf" & nsd_pid=$!
trap 'kill $nsd_pid 2>/dev/null; wait $nsd_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	"$out/spfctl" walk -s $addr d00000.bench.test >/dev/null 2>&1 && break
	sleep 0.1
done

echo "nameserver $addr" > "$out/resolv.conf"

# The machine may be shared and noisy: each round runs both walkers back
# to back on the same NSD and reports the ratio of that round.
secs() { awk '{print $2}' "$1"; }
for round in 1 2 3 4 5; do
	echo "== round $round, $n apexes"
	/usr/bin/time -f 'wall %e s, user %U s, sys %S s, peak RSS %M KiB' -o "$out/spfctl.time" \
		"$out/spfctl" walk -s $addr < "$out/domains.txt" > "$out/spfctl.out" 2> "$out/spfctl.err" || true
	echo "spfctl walk:     $(cat "$out/spfctl.time")"
	unshare -m sh -c "mount --bind '$out/resolv.conf' /etc/resolv.conf && \
		/usr/bin/time -f 'wall %e s, user %U s, sys %S s, peak RSS %M KiB' -o '$out/smtpctl.time' \
		smtpctl spf walk < '$out/domains.txt' > '$out/smtpctl.out' 2> '$out/smtpctl.err'" || true
	echo "smtpctl spf walk: $(cat "$out/smtpctl.time")"
	awk -v a="$(secs "$out/smtpctl.time")" -v b="$(secs "$out/spfctl.time")" \
		'BEGIN { printf "smtpctl / spfctl wall time: %.2f (above 1: spfctl faster)\n", a / b }'
done
echo "spfctl prefixes: $(wc -l < "$out/spfctl.out"), smtpctl lines: $(wc -l < "$out/smtpctl.out")"
# A separate run with -v, untimed (its per-domain detail is long), counts
# the queries.
"$out/spfctl" walk -v -s $addr < "$out/domains.txt" 2>&1 >/dev/null | grep '^# ' || true
echo "distinct questions needed: $(cat "$out/questions")"
if command -v strace >/dev/null; then
	# smtpctl reports no query count: count its sendto calls instead.
	unshare -m sh -c "mount --bind '$out/resolv.conf' /etc/resolv.conf && \
		strace -f -c -e trace=sendto -o '$out/smtpctl.strace' smtpctl spf walk < '$out/domains.txt' > /dev/null" || true
	echo "queries sent: $(awk '$NF == "sendto" {print $4}' "$out/smtpctl.strace")"
fi

# smtpctl prints every term unaggregated; compare the address space covered.
go run ./bench/cover "$out/spfctl.out" "$out/smtpctl.out"
