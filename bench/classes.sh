#!/usr/bin/env bash
# Per class of sshd line, how many connections spfctl scan, fail2ban-regex
# (filter sshd, normal mode) and sshguard's parser flag, on one mixed log
# of N connections per class (default 200), shuffled as a busy host
# interleaves them; every connection has its own client address, so each
# tool's answer names the line it flagged. Needs Debian's fail2ban and
# sshguard packages for their columns. The spfd column is also a test CI
# runs (bench/sshclasses: every attack flagged, no benign connection).
#   bench/classes.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
out=bench/out/classes
rm -rf "$out"; mkdir -p "$out"
go build -o "$out/spfctl" ./cmd/spfctl
go run ./bench/sshclasses -n "$n" -labels "$out/labels.tsv" > "$out/auth.log"
echo "log: $(wc -l < "$out/auth.log") lines, $(wc -l < "$out/labels.tsv") connections"

# spfd: every address an event names, unless it says the address is exempt.
"$out/spfctl" scan -t sshd "$out/auth.log" | awk -F'\t' '!/^#/ && $4 !~ /\(exempt\)/ { print $3 }' | sort -u > "$out/spfd.addrs"
sshg=/usr/libexec/sshguard/sshg-parser
if [ -x "$sshg" ]; then
	"$sshg" < "$out/auth.log" | awk '{ print $2 }' | sort -u > "$out/sshguard.addrs"
else
	echo "no sshguard (apt-get install sshguard): its column is empty" >&2
	: > "$out/sshguard.addrs"
fi
if command -v fail2ban-regex > /dev/null; then
	fail2ban-regex -o ip "$out/auth.log" 'sshd[mode=normal]' 2>/dev/null | sort -u > "$out/fail2ban.addrs" || true
else
	echo "no fail2ban (apt-get install fail2ban): its column is empty" >&2
	: > "$out/fail2ban.addrs"
fi

awk -F'\t' '
	FILENAME ~ /spfd.addrs$/ { spfd[$1] = 1; next }
	FILENAME ~ /fail2ban.addrs$/ { f2b[$1] = 1; next }
	FILENAME ~ /sshguard.addrs$/ { sg[$1] = 1; next }
	{
		if (!($2 in total)) { order[++k] = $2; attack[$2] = $3 }
		total[$2]++
		if ($1 in spfd) s[$2]++
		if ($1 in f2b) f[$2]++
		if ($1 in sg) g[$2]++
	}
	END {
		printf "%-38s %-7s %6s %6s %9s %9s\n", "class", "attack", "conns", "spfd", "fail2ban", "sshguard"
		for (i = 1; i <= k; i++) {
			c = order[i]
			printf "%-38s %-7s %6d %6d %9d %9d\n", c, attack[c] == "true" ? "yes" : "no", total[c], s[c], f[c], g[c]
			if (attack[c] == "true") { at += total[c]; as += s[c]; af += f[c]; ag += g[c] } else { bt += total[c]; bs += s[c]; bf += f[c]; bg += g[c] }
		}
		printf "%-38s %-7s %6d %6d %9d %9d\n", "all attacks", "yes", at, as, af, ag
		printf "%-38s %-7s %6d %6d %9d %9d\n", "all benign", "no", bt, bs, bf, bg
	}' "$out/spfd.addrs" "$out/fail2ban.addrs" "$out/sshguard.addrs" <(sort -t'	' -k2,2 -s "$out/labels.tsv")
