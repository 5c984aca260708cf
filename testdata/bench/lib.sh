# Sourced by the benchmark scripts of testdata/bench (bash, set -euo pipefail):
# a network namespace of the script's own, removed on exit, Ctrl-C or
# TERM with every process left in it; the socket farm; medians.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=
ns=
farm_procs=0
farm_pids=()

# bench_setup NAME: a temporary directory ($tmp) and a network namespace
# ($ns, sstrace-bench-NAME-PID) with lo up, both removed by bench_cleanup.
bench_setup() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$0: run as root (network namespaces, BPF)" >&2
		exit 1
	fi
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/sstrace-bench.XXXXXX")
	ns=sstrace-bench-$1-$$
	ip netns add "$ns"
	ip netns exec "$ns" ip link set lo up
}

bench_cleanup() {
	set +e
	trap - INT TERM
	{ exec 3>&-; } 2>/dev/null # the farm's standard input: it exits
	local pids
	pids=$(jobs -p)
	# shellcheck disable=SC2086 # one PID a word
	[ -z "$pids" ] || kill $pids 2>/dev/null
	if [ -n "$ns" ] && [ -e "/run/netns/$ns" ]; then
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill $pids 2>/dev/null
	fi
	wait 2>/dev/null
	[ -z "$ns" ] || ip netns del "$ns" 2>/dev/null
	[ -z "$tmp" ] || rm -rf "$tmp"
}

# farm_up SOCKETS: SOCKETS/2 established loopback pairs in $ns, held by
# testdata/bench/farm processes of 8000 pairs each (RLIMIT_NOFILE is
# capped near 20000 here) until the script ends. Sets farm_procs.
farm_up() {
	local pairs=$(($1 / 2)) n i
	(cd "$bench_root" && go build -o "$tmp/farm" ./testdata/bench/farm)
	mkfifo "$tmp/hold"
	exec 3<>"$tmp/hold"
	farm_procs=0
	while [ "$pairs" -gt 0 ]; do
		n=$((pairs > 8000 ? 8000 : pairs))
		ip netns exec "$ns" "$tmp/farm" -pairs "$n" <&3 >"$tmp/ready.$farm_procs" &
		farm_pids+=($!)
		pairs=$((pairs - n))
		farm_procs=$((farm_procs + 1))
	done
	for ((i = 0; i < farm_procs; i++)); do
		until grep -q ready "$tmp/ready.$i" 2>/dev/null; do
			kill -0 "${farm_pids[i]}" 2>/dev/null || { echo "farm $i failed" >&2; exit 1; }
			sleep 0.05
		done
	done
}

# median: the median of the numbers on standard input, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# wait_for FILE TEXT PID [SECONDS]: until FILE holds TEXT (a readiness
# line); fails if PID exits first or after SECONDS (30).
wait_for() {
	local file=$1 text=$2 pid=$3 limit=$((SECONDS + ${4:-30}))
	until grep -qF -- "$text" "$file" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "waiting for \"$text\": process $pid exited" >&2
			cat "$file" >&2
			return 1
		fi
		if [ "$SECONDS" -ge "$limit" ]; then
			echo "waiting for \"$text\": timed out" >&2
			cat "$file" >&2
			return 1
		fi
		sleep 0.02
	done
}

# stop PID [SECONDS]: SIGINT, then wait for it to exit (SIGKILL after
# SECONDS, 60). Returns its status.
stop() {
	local pid=$1 limit=$((SECONDS + ${2:-60})) st=0
	kill -INT "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$limit" ]; then
			echo "process $pid did not stop on SIGINT: killed" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.02
	done
	wait "$pid" || st=$?
	return "$st"
}
