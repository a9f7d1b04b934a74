#!/usr/bin/env bash
# spfd with N (default 1 000 000) blacklist entries in its state: time from
# start to answering spfctl, peak RSS, and the time of spfctl show
# blacklist (plain and -v). No root needed; file backend.
#   bench/state.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
out=bench/out/state
rm -rf "$out"; mkdir -p "$out"
out=$(cd "$out" && pwd)
go build -o "$out/spfd" ./cmd/spfd
go build -o "$out/spfctl" ./cmd/spfctl
go run ./bench/stategen -n "$n" -dir "$out/state"
ls -l "$out/state/state" | awk '{print "state file:", $5, "bytes"}'
cat > "$out/spfd.conf" <<CONF
state-directory "$out/state"
socket "$out/spfd.sock" group nogroup mode 0660
resolver 127.0.0.1:1
table white file "$out/white.txt"
table black file "$out/black.txt"
CONF

ms() { date +%s%3N; }
for round in 1 2; do
	t0=$(ms)
	"$out/spfd" -d -f "$out/spfd.conf" 2> "$out/spfd.log" & pid=$!
	until "$out/spfctl" -s "$out/spfd.sock" show status > /dev/null 2>&1; do sleep 0.01; done
	t1=$(ms)
	echo "round $round: restart to ready $((t1 - t0)) ms ($(cat "$out/black.txt" 2> /dev/null | wc -l) prefixes in the table file yet), peak RSS so far $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
	t0=$(ms); "$out/spfctl" -s "$out/spfd.sock" show blacklist > "$out/show.txt"; t1=$(ms)
	echo "  spfctl show blacklist: $((t1 - t0)) ms, $(wc -l < "$out/show.txt") lines", peak RSS so far $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)
	t0=$(ms); "$out/spfctl" -s "$out/spfd.sock" show blacklist -v > "$out/show-v.txt"; t1=$(ms)
	echo "  spfctl show blacklist -v: $((t1 - t0)) ms, $(wc -l < "$out/show-v.txt") lines"
	if [ "$round" = 1 ]; then
		# 64 readers of show blacklist -v that stop reading, as a user who
		# may not change state (as root when setpriv is missing): 12 get
		# in (a user's share of the slots; the others are told "busy"),
		# they share copies of the list (daemon/dumps.go), not one each,
		# and root's add still gets in (slots kept for privileged peers).
		as=()
		if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
			as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
			chmod 0755 "$out" "$out/spfctl"
		fi
		rss0=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
		readers=()
		for i in $(seq 64); do
			("${as[@]}" "$out/spfctl" -s "$out/spfd.sock" show blacklist -v 2> /dev/null | (sleep 30; cat > /dev/null)) &
			readers+=($!)
		done
		sleep 10
		rss1=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
		t0=$(ms)
		added=$("$out/spfctl" -s "$out/spfd.sock" add black 198.18.0.1 2>&1 || true)
		t1=$(ms)
		echo "  64 slow readers of show blacklist -v${as:+ as nobody}: RSS $rss0 -> $rss1 KiB; root's spfctl add meanwhile: $added ($((t1 - t0)) ms)"
		pkill -f "$out/spfctl -s $out/spfd.sock show blacklist -v" || true
		wait "${readers[@]}" 2> /dev/null || true
	fi
	"$out/spfctl" -s "$out/spfd.sock" show status | grep -E 'blacklist|heap'
	echo "  peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
	t0=$(ms); kill -TERM $pid; wait $pid || true; t1=$(ms)
	echo "  shutdown (final snapshot) $((t1 - t0)) ms"
done
