#!/usr/bin/env bash
# Runs ss and sstrace side by side on the same sockets in a network
# namespace of its own, alternating (A B A B ...), and prints the median
# wall time of each and the ratio. Usage: run.sh SSTRACE [SOCKETS] [RUNS]
set -euo pipefail
sstrace=$(realpath "$1"); sockets=${2:-10000}; runs=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
ns=sstrace-bench-$$
tmp=$(mktemp -d)
cleanup() { exec 3>&- 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
(cd "$here/../.." && go build -o "$tmp/farm" ./testdata/bench/farm)

# Established pairs (2 sockets each), 8000 pairs a process at most.
pairs=$((sockets / 2)); procs=0
mkfifo "$tmp/hold"
exec 3<>"$tmp/hold"
while [ "$pairs" -gt 0 ]; do
	n=$(( pairs > 8000 ? 8000 : pairs ))
	ip netns exec "$ns" "$tmp/farm" -pairs "$n" <&3 >"$tmp/ready.$procs" &
	pairs=$((pairs - n)); procs=$((procs + 1))
done
for ((i = 0; i < procs; i++)); do
	until grep -q ready "$tmp/ready.$i" 2>/dev/null; do read -t 0.05 -r _ <&3 || true; done
done
total=$(ip netns exec "$ns" ss -Htan | wc -l)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timeit() { local s e; s=$(date +%s%N); ip netns exec "$ns" "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }

printf '%d TCP sockets in %d processes, %d runs each, alternating; times in ms (median)\n' "$total" "$procs" "$runs"
printf '%-28s %10s %10s %8s\n' "command" "ss" "sstrace" "ratio"
for args in "-tan" "-tanp" "-tani" "-tanep" "-tan sport = :1024 or dport gt :40000" "-s"; do
	a=(); b=()
	for ((r = 0; r < runs; r++)); do
		# shellcheck disable=SC2086
		a+=("$(timeit ss $args)")
		# shellcheck disable=SC2086
		b+=("$(timeit "$sstrace" $args)")
	done
	ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
	awk -v c="$args" -v a="$ma" -v b="$mb" 'BEGIN { printf "%-28s %10.1f %10.1f %7.2fx\n", c, a/1000, b/1000, b/a }'
done
