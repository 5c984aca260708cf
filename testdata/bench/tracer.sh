#!/usr/bin/env bash
# What the tracer costs a churning workload.
# Usage: tracer.sh SSTRACE [CHURN] [RUNS] [BASELINE]
#
# Two workloads, each one process pinned to CPU 0 in a network namespace of
# this script's own, CHURN iterations (default 100000):
#   socket   testdata/bench/churn/churn.c: socket() + close()
#   connect  testdata/bench/churn/connchurn.c: a loopback connection
#            (connect, accept, close both)
# each run bare, under `sstrace trace -j`, `sstrace trace` (text) and
# `sstrace watch -tan`, all limited to the namespace with --netns,
# alternating (bare trace-j trace watch, RUNS times, default 5); with
# BASELINE (another sstrace binary, e.g. one built from main), its trace -j,
# trace and watch run too, in the same rounds, for a before/after on the
# same machine at the same time. It prints each setup's median throughput,
# the ratio to bare, and what the tracer delivered:
#   trace: its output goes to a file in /dev/shm (tmpfs: a memory copy,
#          close to /dev/null, and no reader competing with the workload
#          for the CPU), counted after the run: events = its lines but
#          the "lost" ones, lost = the sum of those lines' counts (trace
#          reports losses inline).
#   watch: its blocks (non-terminal mode, one a second) go to grep, which
#          keeps their "--- ... events E lost L resyncs R ---" lines: E
#          (events applied to the overlay), L (the tracer's loss count) and R
#          (rebuilds after losses) of the last block, once two blocks after
#          the workload agree (all applied; at most 10 s: a run still
#          applying then is counted as unsettled, its events a lower bound).
# The tracer is started, and the workload run once it says it is attached
# (its "Ctrl-C to stop" line on standard error); then it gets SIGINT (trace
# first shows every event emitted before it) and is waited for.
#
# The namespace has net.ipv4.tcp_max_tw_buckets=0: connections closed leave
# no TIME-WAIT minisocket (the events are the same: the socket still goes
# FIN-WAIT-2 -> CLOSE), so no run inherits the ports or minisockets of the
# last, and ip_local_port_range is 1024-65535. (It also makes a few
# connections in 10,000 end in a real RST: see churn/connchurn.c.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testdata/bench/lib.sh
. "$here/lib.sh"
sstrace=$(realpath "$1")
churn=${2:-100000}
runs=${3:-5}
baseline=
[ -z "${4:-}" ] || baseline=$(realpath "$4")

bench_setup tracer
shm=$(mktemp -d /dev/shm/sstrace-bench.XXXXXX)
trap 'rm -rf "$shm"; bench_cleanup' EXIT
ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_max_tw_buckets=0 net.ipv4.ip_local_port_range="1024 65535"
gcc -O2 -o "$tmp/socket" "$here/churn/churn.c"
gcc -O2 -o "$tmp/connect" "$here/churn/connchurn.c"
netns=/run/netns/$ns

# workload NAME: runs it once; prints its operations per second.
workload() { ip netns exec "$ns" "$tmp/$1" "$churn"; }

# run_bare NAME: prints "OPS".
run_bare() { workload "$1"; }

# run_trace NAME SSTRACE json|text: prints "OPS EVENTS LOST".
run_trace() {
	local tpid ops st=0 json=()
	[ "$3" = text ] || json=(-j)
	rm -f "$tmp/trace.err" # no readiness line of the last run
	"$2" trace "${json[@]}" --netns "$netns" >"$shm/trace.out" 2>"$tmp/trace.err" &
	tpid=$!
	wait_for "$tmp/trace.err" "tracing socket events" "$tpid"
	ops=$(workload "$1")
	stop "$tpid" || st=$?
	if [ "$st" -ne 0 ]; then
		echo "sstrace trace exited with status $st:" >&2
		cat "$tmp/trace.err" >&2
		return 1
	fi
	# Lost lines: {"type":"lost",...,"lost":N,...} or "-- lost N events ...".
	echo "$ops $(awk 'index($0, "{\"type\":\"lost\"") == 1 { nl++; if (match($0, /"lost":[0-9]+/)) lost += substr($0, RSTART + 7, RLENGTH - 7); next }
		index($0, "-- lost ") == 1 { nl++; lost += $3 }
		END { print NR - nl, lost + 0 }' "$shm/trace.out")"
	rm -f "$shm/trace.out"
}

# run_watch NAME SSTRACE: prints "OPS EVENTS LOST RESYNCS SETTLED".
run_watch() {
	local wpid gpid ops st=0 n0 limit settled=0
	rm -f "$tmp/watch.out" "$tmp/watch.blocks" "$tmp/watch.err"
	mkfifo "$tmp/watch.out"
	grep --line-buffered -F -- '--- ' <"$tmp/watch.out" >"$tmp/watch.blocks" &
	gpid=$!
	"$2" watch -tan --netns "$netns" >"$tmp/watch.out" 2>"$tmp/watch.err" &
	wpid=$!
	wait_for "$tmp/watch.err" "Ctrl-C to stop" "$wpid"
	ops=$(workload "$1")
	# Until two blocks after the workload count the same events.
	n0=$(wc -l <"$tmp/watch.blocks")
	limit=$((SECONDS + 10))
	while :; do
		if [ "$(wc -l <"$tmp/watch.blocks")" -ge $((n0 + 2)) ] &&
			[ "$(tail -n 2 "$tmp/watch.blocks" | awk '{print $6}' | uniq | wc -l)" -eq 1 ]; then
			settled=1
			break
		fi
		if [ "$SECONDS" -ge "$limit" ]; then
			echo "($1 under watch: still applying events 10 s after the workload; stopped)" >&2
			break
		fi
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.1
	done
	stop "$wpid" || st=$?
	wait "$gpid" || true
	if [ "$st" -ne 0 ]; then
		echo "sstrace watch exited with status $st:" >&2
		cat "$tmp/watch.err" >&2
		return 1
	fi
	# "--- HH:MM:SS.mmm  N sockets  events E  lost L  resyncs R ---"
	echo "$ops $(tail -n 1 "$tmp/watch.blocks" | awk '{print $6, $8, $10}') $settled"
}

# col FILE N: column N of FILE's lines.
col() { awk -v c="$2" '{print $c}' "$1"; }

setups=(bare trace-j trace watch)
[ -z "$baseline" ] || setups+=(base-trace-j base-trace base-watch)
# run SETUP NAME: one run of the workload under SETUP.
run() {
	case $1 in
	bare) run_bare "$2" ;;
	trace-j) run_trace "$2" "$sstrace" json ;;
	trace) run_trace "$2" "$sstrace" text ;;
	watch) run_watch "$2" "$sstrace" ;;
	base-trace-j) run_trace "$2" "$baseline" json ;;
	base-trace) run_trace "$2" "$baseline" text ;;
	base-watch) run_watch "$2" "$baseline" ;;
	esac
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'tracer cost: %d iterations a run, workload pinned to CPU 0, %d runs each, alternating %s; medians\n' "$churn" "$runs" "${setups[*]}"
[ -z "$baseline" ] || printf 'sstrace: %s, baseline (base-*): %s\n' "$sstrace" "$baseline"
for w in socket connect; do
	for s in "${setups[@]}"; do : >"$tmp/res.$w.$s"; done
	for ((r = 0; r < runs; r++)); do
		for s in "${setups[@]}"; do
			run "$s" "$w" >>"$tmp/res.$w.$s"
		done
	done
done

unit() { if [ "$1" = socket ]; then echo "sockets/s"; else echo "conns/s"; fi; }
for w in socket connect; do
	case $w in
	socket) echo; echo "socket()+close() churn (churn.c)" ;;
	connect) echo; echo "loopback connect/accept/close churn (connchurn.c)" ;;
	esac
	printf '%-15s %10s %7s %11s %9s %17s %8s  %s\n' "setup" "$(unit "$w")" "vs bare" "events/run" "per iter" "lost/run" "resyncs" "runs ($(unit "$w"))"
	bare=$(col "$tmp/res.$w.bare" 1 | median)
	for s in "${setups[@]}"; do
		f=$tmp/res.$w.$s
		ops=$(col "$f" 1 | median)
		all=$(col "$f" 1 | paste -sd' ' -)
		case $s in
		bare) label="bare" ;;
		trace-j) label="trace -j" ;;
		trace) label="trace" ;;
		watch) label="watch -tan" ;;
		base-trace-j) label="base trace -j" ;;
		base-trace) label="base trace" ;;
		base-watch) label="base watch" ;;
		esac
		if [ "$s" = bare ]; then
			printf '%-15s %10.0f %6.2fx %11s %9s %17s %8s  %s\n' "$label" "$ops" 1 - - - - "$all"
			continue
		fi
		ev=$(col "$f" 2 | median)
		lost=$(col "$f" 3 | median)
		lostmax=$(col "$f" 3 | sort -g | tail -n 1)
		resyncs=-
		case $s in *watch) resyncs=$(col "$f" 4 | median) ;; esac
		awk -v l="$label" -v o="$ops" -v b="$bare" -v e="$ev" -v n="$churn" -v lo="$lost" -v lm="$lostmax" -v rs="$resyncs" -v a="$all" \
			'BEGIN { printf "%-15s %10.0f %6.2fx %11.0f %9.2f %17s %8s  %s\n", l, o, o/b, e, e/n, (lm > lo ? lo " (max " lm ")" : lo), rs, a }'
	done
done
echo
echo "events/run: trace: lines written (inet events), watch: events applied to its overlay; per iter: events/run / iterations;"
echo "lost/run: events the ring buffer had no room for, plus runs the kernel skipped (median; max when larger)"
for w in socket connect; do
	for s in watch base-watch; do
		[ -e "$tmp/res.$w.$s" ] || continue
		n=$(awk '$5 == 0' "$tmp/res.$w.$s" | wc -l)
		[ "$n" -eq 0 ] || echo "$w under $s: $n of $runs runs still applying events 10 s after the workload (their events: a lower bound)"
	done
done
printf 'load average (1 5 15 min): %s before, %s after: other work on the machine skews these\n' "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
