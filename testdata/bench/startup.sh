#!/usr/bin/env bash
# Start-up time and memory with many sockets.
# Usage: startup.sh SSTRACE [SOCKETS] [RUNS] [BASELINE]
#
# Builds a network namespace of its own holding SOCKETS established TCP
# sockets (default 100000; testdata/bench/farm processes, 8000 pairs each),
# then runs, alternating, RUNS times each (default 5):
#   ss -tan, sstrace -tan    inside the namespace (ip netns exec)
#   sstrace watch -tan       with --netns, output a pipe (non-terminal mode:
#                            a block a second), stopped with SIGINT once its
#                            second block is whole
# under testdata/bench/firstrow, which times from just before exec to the
# first line of output (the listings: their header, written once the dump is
# in) or to the first row of the first block (watch), and to the whole
# output (the listings) or the whole first block (watch), and reads the
# maximum resident set (wait4's ru_maxrss, what /usr/bin/time -v shows; for
# watch that covers its second block too, with every socket in its overlay).
# Medians. Targets (issue #6): start-up < 300 ms, RSS < 64 MiB. With
# BASELINE (another sstrace binary, e.g. one built from an older commit),
# its listing and watch run too, in the same alternation, for a before and
# after measured on the same machine at the same time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testdata/bench/lib.sh
. "$here/lib.sh"
sstrace=$(realpath "$1")
sockets=${2:-100000}
runs=${3:-5}
base=
[ -z "${4:-}" ] || base=$(realpath "$4")

bench_setup startup
(cd "$bench_root" && go build -o "$tmp/firstrow" ./testdata/bench/firstrow)
farm_up "$sockets"
total=$(ip netns exec "$ns" ss -Htan | wc -l)

# measure NAME CMD...: one run of CMD under firstrow, its line appended to
# $tmp/res.NAME.
measure() {
	local name=$1
	shift
	"$@" >>"$tmp/res.$name" 2>"$tmp/err.$name" || {
		echo "$name failed:" >&2
		cat "$tmp/err.$name" >&2
		return 1
	}
}

for ((r = 0; r < runs; r++)); do
	measure ss ip netns exec "$ns" "$tmp/firstrow" -- ss -tan
	measure list ip netns exec "$ns" "$tmp/firstrow" -- "$sstrace" -tan
	measure watch "$tmp/firstrow" -blocks 2 -- "$sstrace" watch -tan --netns "/run/netns/$ns"
	if [ -n "$base" ]; then
		measure base-list ip netns exec "$ns" "$tmp/firstrow" -- "$base" -tan
		measure base-watch "$tmp/firstrow" -blocks 2 -- "$base" watch -tan --netns "/run/netns/$ns"
	fi
done
names="ss list watch"
[ -z "$base" ] || names="$names base-list base-watch"

# field NAME KEY: the median of KEY=value over NAME's runs.
field() { sed -n "s/.*\<$2=\([-0-9.]*\).*/\1/p" "$tmp/res.$1" | median; }

printf '%d TCP sockets in %d processes, %d runs each, alternating; medians\n' "$total" "$farm_procs" "$runs"
printf '%-22s %14s %14s %13s %9s\n' "command" "first row ms" "all rows ms" "max RSS MiB" "sockets"
for name in $names; do
	case $name in
	ss) label="ss -tan" ;;
	list) label="sstrace -tan" ;;
	watch) label="sstrace watch -tan" ;;
	base-list) label="baseline -tan" ;;
	base-watch) label="baseline watch -tan" ;;
	esac
	socks=$(( $(field "$name" lines) - 1 ))
	case $name in *watch) socks=$(field "$name" sockets) ;; esac
	awk -v l="$label" -v f="$(field "$name" first_ms)" -v d="$(field "$name" done_ms)" -v m="$(field "$name" maxrss_kib)" -v s="$socks" \
		'BEGIN { printf "%-22s %14.1f %14.1f %13.1f %9d\n", l, f, d, m/1024, s }'
done
echo "first row: the first line (listings: their header) / the first row of watch's first block; all rows: the"
echo "whole listing / watch's whole first block; both from just before exec. Targets: start-up < 300 ms, RSS < 64 MiB."
awk -v l="$(field list first_ms)" -v w="$(field watch first_ms)" -v m="$(field watch maxrss_kib)" 'BEGIN {
	printf "sstrace -tan start-up %s (%.0f ms); sstrace watch -tan start-up %s (%.0f ms), RSS %s (%.1f MiB)\n",
		(l < 300 ? "met" : "MISSED"), l, (w < 300 ? "met" : "MISSED"), w, (m < 65536 ? "met" : "MISSED"), m/1024 }'
