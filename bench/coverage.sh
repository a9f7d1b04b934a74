#!/usr/bin/env bash
# Coverage against fail2ban on fail2ban's own sample logs (Debian package
# fail2ban): each line is scanned alone, by fail2ban-regex with the
# filter in normal mode and by spfd's parser and rules. Per filter: the
# lines fail2ban flags that spfd flags with the same address, the lines
# where spfd names another address, those it misses, and the lines spfd
# flags that fail2ban does not, each line where they differ shown. The
# comparison is a Go test (CI runs it, and fails under 90% or on an
# address fail2ban does not name but where its own is the attacker's).
#   bench/coverage.sh [sshd|nginx-botsearch|apache-botsearch|apache-noscript|nginx-bad-request ...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v fail2ban-regex > /dev/null || { echo "needs Debian's fail2ban package (apt-get install fail2ban)" >&2; exit 1; }
run=TestCoverageAgainstFail2ban
if [ $# -gt 0 ]; then run="$run/^($(IFS='|'; echo "$*"))\$"; fi
go test -count=1 -v -run "$run" ./bench/coverage | sed -n 's/^ *coverage_test.go:[0-9]*: //p; /^\(ok\|FAIL\|---\)/p'
