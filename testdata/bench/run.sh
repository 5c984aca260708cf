#!/usr/bin/env bash
# Runs ss and sstrace side by side on the same sockets in a network
# namespace of its own, alternating (A B A B ...), and prints the median
# wall time of each and the ratio. Usage: run.sh SSTRACE [SOCKETS] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testdata/bench/lib.sh
. "$here/lib.sh"
sstrace=$(realpath "$1"); sockets=${2:-10000}; runs=${3:-5}

bench_setup list
# Established pairs (2 sockets each), 8000 pairs a process at most.
farm_up "$sockets"
total=$(ip netns exec "$ns" ss -Htan | wc -l)

timeit() { local s e; s=$(date +%s%N); ip netns exec "$ns" "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }

printf '%d TCP sockets in %d processes, %d runs each, alternating; times in ms (median)\n' "$total" "$farm_procs" "$runs"
printf '%-40s %10s %10s %8s\n' "command" "ss" "sstrace" "ratio"
for args in "-tan" "-tanp" "-tani" "-tanep" "-tan sport = :1024 or dport gt :40000" "-s"; do
	a=(); b=()
	for ((r = 0; r < runs; r++)); do
		# shellcheck disable=SC2086
		a+=("$(timeit ss $args)")
		# shellcheck disable=SC2086
		b+=("$(timeit "$sstrace" $args)")
	done
	ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
	awk -v c="$args" -v a="$ma" -v b="$mb" 'BEGIN { printf "%-40s %10.1f %10.1f %7.2fx\n", c, a/1000, b/1000, b/a }'
done
