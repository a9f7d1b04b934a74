#!/usr/bin/env bash
# Parse throughput on a synthetic sshd log of N lines (default 1 000 000,
# 15% IPv6): spfctl scan -t sshd against sshguard's parser and
# fail2ban-regex (Debian packages sshguard and fail2ban), then the latency
# from a line appended to a followed log to spfd's table file.
#   bench/scan.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
out=bench/out/scan
rm -rf "$out"; mkdir -p "$out"
go build -o "$out/spfctl" ./cmd/spfctl
go build -o "$out/spfd" ./cmd/spfd
go run ./bench/sshgen -n "$n" > "$out/auth.log"
echo "log: $n lines, $(wc -c < "$out/auth.log") bytes"

rate() { awk -v n="$n" -v s="$1" 'BEGIN { printf "%.0f lines/s", n / s }'; }
secs() { awk '{print $1}' "$1"; }

# The machine may be shared and noisy: each round runs both tools back to
# back and reports the ratio of that round.
run_spfctl() {
	/usr/bin/time -f '%e %M' -o "$out/spfctl.time" "$out/spfctl" scan -t sshd "$out/auth.log" > "$out/spfctl.out"
	echo "spfctl scan -t sshd: $(secs "$out/spfctl.time") s, $(rate "$(secs "$out/spfctl.time")"), peak RSS $(awk '{print $2}' "$out/spfctl.time") KiB"
}
sshg=/usr/libexec/sshguard/sshg-parser
for round in 1 2 3 4 5; do
	echo "== round $round"
	run_spfctl
	if [ -x "$sshg" ]; then
		/usr/bin/time -f '%e %M' -o "$out/sshg.time" "$sshg" < "$out/auth.log" > "$out/sshg.out"
		echo "sshg-parser: $(secs "$out/sshg.time") s, $(rate "$(secs "$out/sshg.time")"), peak RSS $(awk '{print $2}' "$out/sshg.time") KiB"
		awk -v a="$(secs "$out/sshg.time")" -v b="$(secs "$out/spfctl.time")" 'BEGIN { printf "spfctl scan / sshg-parser speed: %.1fx\n", a / b }' | tee -a "$out/sshg.ratios"
	fi
done
if [ -s "$out/sshg.ratios" ]; then
	# One slow 0.3 s run makes one round an outlier; the median of the
	# rounds is the figure.
	echo "spfctl scan / sshg-parser speed, median of five rounds: $(sed 's/.*: //' "$out/sshg.ratios" | sort -n | sed -n 3p)"
fi
echo "spfctl events $(grep -vc '^#' "$out/spfctl.out"), $(grep '^# would blacklist' "$out/spfctl.out")"
if [ -x "$sshg" ]; then echo "sshg-parser attacks reported $(wc -l < "$out/sshg.out")"; fi

if command -v fail2ban-regex > /dev/null; then
	# fail2ban-regex runs for a minute, which evens out the machine's
	# noise; one spfctl run of a third of a second does not. Compare with
	# the median of five spfctl runs before and five after it.
	echo "== fail2ban-regex (filter sshd), between ten spfctl runs"
	: > "$out/spfctl.secs"
	for i in 1 2 3 4 5; do run_spfctl > /dev/null; secs "$out/spfctl.time" >> "$out/spfctl.secs"; done
	/usr/bin/time -f '%e %M' -o "$out/f2b.time" fail2ban-regex "$out/auth.log" sshd > "$out/f2b.out" 2>&1 || true
	echo "$(secs "$out/f2b.time") s, $(rate "$(secs "$out/f2b.time")"), peak RSS $(awk '{print $2}' "$out/f2b.time") KiB"
	grep -E '^(Lines|Failregex):' "$out/f2b.out" || true
	for i in 1 2 3 4 5; do run_spfctl > /dev/null; secs "$out/spfctl.time" >> "$out/spfctl.secs"; done
	median=$(sort -n "$out/spfctl.secs" | awk '{ v[NR] = $1 } END { print (v[5] + v[6]) / 2 }')
	echo "spfctl scan -t sshd, ten runs: $(sort -n "$out/spfctl.secs" | tr '\n' ' ')s, median $median s"
	awk -v a="$(secs "$out/f2b.time")" -v b="$median" 'BEGIN { printf "spfctl scan / fail2ban-regex speed: %.0fx\n", a / b }'
fi

echo "== latency, log line to table file"
go run ./bench/latency -spfd "$out/spfd" -n 200
