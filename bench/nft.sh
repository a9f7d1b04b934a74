#!/usr/bin/env bash
# nftables backend against nft's own CLI, as root in a private network
# namespace (the Go test binary re-executes itself under unshare -n):
# a full sync of 100 000 IPv4 + 10 000 IPv6 prefixes into empty sets
# against nft -f loading the same elements, and one added address in sets
# that hold the 110 000 against nft add element.
#   bench/nft.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (unshare -n)" >&2; exit 1; }
go test -run XXX -bench NFTables -benchtime "${1:-5}x" ./pftable
