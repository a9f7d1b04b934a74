#!/usr/bin/env bash
# spfctl scan -t sshd at two revisions on bench/sshgen's log, for a change
# too small to show through a shared machine's noise in bench/scan.sh:
# the runs alternate (ABBA), so noise hits both alike, and with valgrind
# installed each binary's instructions are counted as well, which noise
# does not touch.
#   bench/scanab.sh [REV_A [REV_B [LINES [RUNS]]]]
#   (default: HEAD~1 HEAD 1000000 21)
set -euo pipefail
cd "$(dirname "$0")/.."
revs=("${1:-HEAD~1}" "${2:-HEAD}")
n=${3:-1000000}
runs=${4:-21}
out=bench/out/scanab
rm -rf "$out"; mkdir -p "$out"
for i in 0 1; do
	git worktree add -q --detach "$out/src$i" "${revs[$i]}"
	(cd "$out/src$i" && go build -o "../spfctl$i" ./cmd/spfctl)
	git worktree remove --force "$out/src$i"
done
go run ./bench/sshgen -n "$n" > "$out/auth.log"
echo "log: $n lines; A = ${revs[0]} ($(git rev-parse --short "${revs[0]}")), B = ${revs[1]} ($(git rev-parse --short "${revs[1]}"))"

# Both must say the same, or the comparison means nothing.
"$out/spfctl0" scan -t sshd "$out/auth.log" > "$out/report0"
"$out/spfctl1" scan -t sshd "$out/auth.log" > "$out/report1"
if cmp -s "$out/report0" "$out/report1"; then echo "reports: identical"; else echo "reports: DIFFER"; fi

TIMEFORMAT='%3R %3U %3S'
for r in $(seq "$runs"); do
	order="0 1"
	if ((r % 2 == 0)); then order="1 0"; fi
	for i in $order; do
		{ time "$out/spfctl$i" scan -t sshd "$out/auth.log" > /dev/null; } 2>> "$out/times$i"
	done
done
# median and minimum of a column of seconds, in ms
stat() { sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median %.0f ms, min %.0f ms", m * 1000, v[1] * 1000 }'; }
for i in 0 1; do
	name=$([ "$i" = 0 ] && echo A || echo B)
	echo "$name: wall $(awk '{ print $1 }' "$out/times$i" | stat); CPU $(awk '{ print $2 + $3 }' "$out/times$i" | stat)"
done
awk -v runs="$runs" 'FNR == 1 { f++ } { w[f, FNR] = $1 } END {
	for (r = 1; r <= runs; r++) if (w[2, r] < w[1, r]) b++
	printf "B faster in %d of %d pairs\n", b, runs }' "$out/times0" "$out/times1"

if command -v valgrind > /dev/null; then
	# Go's preemption signals upset valgrind; one P keeps the count stable.
	for i in 0 1; do
		name=$([ "$i" = 0 ] && echo A || echo B)
		ir=$(GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind$i" \
			"$out/spfctl$i" scan -t sshd "$out/auth.log" 2>&1 > /dev/null | awk '/refs:/ { gsub(",", "", $NF); print $NF }')
		echo "$name: $ir instructions ($(awk -v ir="$ir" -v n="$n" 'BEGIN { printf "%.0f", ir / n }') a line)"
		eval "ir$i=$ir"
	done
	awk -v a="$ir0" -v b="$ir1" 'BEGIN { printf "B / A instructions: %.3f\n", b / a }'
fi
