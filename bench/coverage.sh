#!/usr/bin/env bash
# Coverage against fail2ban on fail2ban's own sample logs (Debian package
# fail2ban): each line is scanned alone, by fail2ban-regex with the
# filter in normal mode and by spfd's parser and rules, and the script
# counts the lines fail2ban flags that spfd flags with the same address,
# the lines where spfd names another address, and the lines spfd flags
# that fail2ban does not.
#   bench/coverage.sh [sshd|nginx-botsearch|apache-botsearch|apache-noscript|nginx-bad-request ...]
set -euo pipefail
cd "$(dirname "$0")/.."
logs=/usr/lib/python3/dist-packages/fail2ban/tests/files/logs
[ -d "$logs" ] || { echo "needs Debian's fail2ban package (apt-get install fail2ban)" >&2; exit 1; }
out=bench/out/coverage
rm -rf "$out"; mkdir -p "$out"
go build -o "$out/coverage" ./bench/coverage
filters=${*:-sshd nginx-botsearch apache-botsearch apache-noscript nginx-bad-request}
for f in $filters; do
	case $f in
	sshd) family=sshd; filter='sshd[mode=normal]' ;;
	*) family=httpd; filter=$f ;;
	esac
	grep -v '^#' "$logs/$f" | grep -v '^[[:space:]]*$' > "$out/$f.lines" || true
	: > "$out/$f.f2b"
	while IFS= read -r line; do
		printf '%s\n' "$line" > "$out/one"
		ip=$(fail2ban-regex -o ip "$out/one" "$filter" 2>/dev/null | head -1)
		echo "${ip:--}" >> "$out/$f.f2b"
	done < "$out/$f.lines"
	"$out/coverage" -t "$family" < "$out/$f.lines" > "$out/$f.spfd"
	paste "$out/$f.f2b" "$out/$f.spfd" "$out/$f.lines" > "$out/$f.both"
	awk -F'\t' -v name="$f" '
		function norm(a) { gsub(/^0+/, "", a); return a }
		$1 != "-" { f2b++; if ($2 == $1 || ($2 != "-" && norm($2) == norm($1))) same++; else if ($2 != "-") wrong++; else missed++ }
		$1 == "-" && $2 != "-" { extra++ }
		END {
			printf "%-18s fail2ban flags %d lines; spfd flags %d of them with the same address (%.0f%%), %d with another, misses %d; spfd alone flags %d\n",
				name, f2b, same, f2b ? 100 * same / f2b : 0, wrong, missed, extra
		}' "$out/$f.both"
done
echo "per line: $out/*.both (fail2ban, spfd, line)"
