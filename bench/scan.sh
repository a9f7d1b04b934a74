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

echo "== spfctl scan -t sshd"
for round in 1 2 3; do
	/usr/bin/time -f '%e %M' -o "$out/spfctl.time" "$out/spfctl" scan -t sshd "$out/auth.log" > "$out/spfctl.out"
	echo "$(secs "$out/spfctl.time") s, $(rate "$(secs "$out/spfctl.time")"), peak RSS $(awk '{print $2}' "$out/spfctl.time") KiB"
done
spfctl_s=$(secs "$out/spfctl.time")
echo "events $(grep -vc '^#' "$out/spfctl.out"), $(grep '^# would blacklist' "$out/spfctl.out")"

if [ -x /usr/libexec/sshguard/sshg-parser ]; then
	echo "== sshguard's sshg-parser"
	for round in 1 2 3; do
		/usr/bin/time -f '%e %M' -o "$out/sshg.time" /usr/libexec/sshguard/sshg-parser < "$out/auth.log" > "$out/sshg.out"
		echo "$(secs "$out/sshg.time") s, $(rate "$(secs "$out/sshg.time")"), peak RSS $(awk '{print $2}' "$out/sshg.time") KiB"
	done
	echo "attacks reported $(wc -l < "$out/sshg.out")"
	awk -v a="$(secs "$out/sshg.time")" -v b="$spfctl_s" 'BEGIN { printf "spfctl scan / sshg-parser speed: %.1fx\n", a / b }'
fi

if command -v fail2ban-regex > /dev/null; then
	echo "== fail2ban-regex (filter sshd)"
	/usr/bin/time -f '%e %M' -o "$out/f2b.time" fail2ban-regex "$out/auth.log" sshd > "$out/f2b.out" 2>&1 || true
	echo "$(secs "$out/f2b.time") s, $(rate "$(secs "$out/f2b.time")"), peak RSS $(awk '{print $2}' "$out/f2b.time") KiB"
	grep -E '^(Lines|Failregex):' "$out/f2b.out" || true
	awk -v a="$(secs "$out/f2b.time")" -v b="$spfctl_s" 'BEGIN { printf "spfctl scan / fail2ban-regex speed: %.0fx\n", a / b }'
fi

echo "== latency, log line to table file"
go run ./bench/latency -spfd "$out/spfd" -n 200
