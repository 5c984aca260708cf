#!/usr/bin/env bash
# run.sh: the kernel matrix (make test-kernels). Boots Debian's newest cloud
# kernels under QEMU (TCG) with a root image holding the root test suites
# (and a small initramfs that loads the modules and mounts it), runs them, and reports a table kernel × package with every failing test;
# "host" runs the same binaries on the machine's own kernel.
#
# Variables:
#   KERNELS          the lines to run (default: 5.10 6.1 6.12 sid host)
#   KERNELS_CACHE    downloads and the work tree (default /var/cache/sstrace-kernels)
#   KERNELS_RESULTS  where results go (default $KERNELS_CACHE/results)
#   KERNELS_TIMEOUT  seconds one boot may take, tests included (default 3600:
#                    a package that hangs costs its 20-minute go test timeout)
#   KERNELS_TEST_TIMEOUT  go test -timeout of each package (default 20m)
#   KERNELS_RUN      only the tests matching this -test.run pattern
#   KERNELS_SKIP     the -test.skip pattern (default: the soak and the slow tests that
#                    exercise no kernel code, which make test runs on the host)
#   KERNELS_PACKAGES only these packages (default: every package with root tests)
#   KERNELS_WORK     a work tree to keep (default: $KERNELS_CACHE/work.PID, removed at the end)
#
# Exit status: 0 when every test passed or failed as known-failures says,
# 1 when a test failed unexpectedly or a kernel could not run its tests.
set -euo pipefail
# The whole script is one compound command, read before it runs: editing
# this file while a matrix runs does not derail it.
{
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

lines=${KERNELS:-5.10 6.1 6.12 sid host}
cache=${KERNELS_CACHE:-/var/cache/sstrace-kernels}
results=${KERNELS_RESULTS:-$cache/results}
timeout_s=${KERNELS_TIMEOUT:-3600}
export KERNELS_TEST_TIMEOUT=${KERNELS_TEST_TIMEOUT:-20m}
GO=${GO:-go}

# The packages with tests that need root (nstest), as "DIR BINARY".
packages=${KERNELS_PACKAGES:-tracer snapshot snapshot/filter snapshot/nstest cmd/sstrace cmd/sstrace/render}
# Modules the tests need that Debian's cloud kernels build as modules:
# sock_diag for every family ss lists (a Debian system loads them on the
# first dump; the guest has no modprobe, so all are loaded at boot, with the
# protocols they need: DCCP, SCTP, TIPC, vsock, SMC, XDP), nf_tables for the
# stalls tests' drops.
modules="inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag af_packet_diag mptcp_diag
	dccp_diag sctp_diag tipc_diag vsock_diag smc_diag xsk_diag nf_tables"
# What mounting the root image needs (ext4 is built in, virtio-blk is not).
boot_modules="virtio_pci virtio_blk ext4"
# Dynamic programs the tests run, copied with their libraries.
programs="ss ip setpriv nft bpftool"

# A work tree of this run's own (two runs must not pack each other's root),
# removed at the end unless KERNELS_WORK names one to keep.
if [[ -n ${KERNELS_WORK:-} ]]; then
	work=$KERNELS_WORK
else
	work=$cache/work.$$
	trap 'rm -rf "$work"' EXIT
fi
root=$work/root
mkdir -p "$cache" "$results"
rm -rf "$work"
mkdir -p "$work" "$root"

log() { echo "test-kernels: $*" >&2; }

# --- the kernels ---------------------------------------------------------
vm_lines=""
for l in $lines; do [[ $l == host ]] || vm_lines="$vm_lines $l"; done
: >"$work/kernels"
if [[ -n $vm_lines ]]; then
	# shellcheck disable=SC2086
	"$here/fetch.sh" "$cache" $vm_lines >"$work/kernels"
fi

# --- the common root: tests, helpers, busybox, tools, /etc, the sources --
t0=$(date +%s)
mkdir -p "$root/tests/helpers" "$root/src" "$root/etc/sstrace-kernels" "$root/root" \
	"$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/usr/bin" "$root/usr/sbin"
# The layout of a merged-/usr Debian: the libraries' paths are the host's.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
mkdir -p "$root/usr/lib" "$root/usr/lib64"

: >"$root/tests/list"
for p in $packages; do
	bin=$(echo "$p" | tr / _).test
	log "building $p tests"
	CGO_ENABLED=0 $GO test -c -o "$root/tests/$bin" "./$p"
	echo "$p $bin" >>"$root/tests/list"
done
if [[ -x $root/tests/cmd_sstrace.test ]]; then
	log "building the helper programs (sstrace, trace client, leakers, connector)"
	(cd cmd/sstrace && CGO_ENABLED=0 SSTRACE_BUILD_HELPERS="$root/tests/helpers" "$root/tests/cmd_sstrace.test")
fi

# The sources: tests read testdata and their own files relative to their package.
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$root/src"
for p in $packages; do [[ -d $root/src/$p ]] || { log "missing $p in the source copy"; exit 1; }; done

# copy_with_libs FILE: FILE and the shared libraries it needs, at their paths.
copy_with_libs() {
	local f=$1 lib
	cp -L --parents "$f" "$root/" 2>/dev/null || cp -L "$f" "$root/usr/bin/"
	for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		[[ -e $root$lib ]] || cp -L --parents "$lib" "$root/"
	done
}
for prog in $programs; do
	p=$(command -v "$prog" || true)
	if [[ -z $p ]]; then
		log "note: $prog not installed: the tests that run it will fail or skip in the VMs"
		continue
	fi
	p=$(readlink -f "$p")
	case $p in /bin/* | /sbin/*) p=/usr$p ;; esac
	copy_with_libs "$p"
done
# C helpers link against the host's libc, like every Debian program.
for h in "$root"/tests/helpers/*; do
	[[ -x $h && ! -d $h ]] || continue
	for lib in $(ldd "$h" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		[[ -e $root$lib ]] || cp -L --parents "$lib" "$root/"
	done
done
# busybox for the rest (sh, mount, insmod, poweroff, ...), where no real program is.
cp /bin/busybox "$root/usr/bin/busybox"
for a in $(/bin/busybox --list-full); do
	name=${a##*/}
	[[ -e $root/usr/bin/$name || -e $root/usr/sbin/$name ]] || ln -s busybox "$root/usr/bin/$name"
done
# ld.so.cache spares every dynamic program's start a search of the library
# directories, which under TCG is noticeable over a thousand runs of ss.
for f in services protocols hosts nsswitch.conf ethertypes ld.so.cache; do
	[[ -e /etc/$f ]] && cp -L "/etc/$f" "$root/etc/"
done
[[ -d /etc/iproute2 ]] && cp -rL /etc/iproute2 "$root/etc/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
cp "$here/init" "$root/init"
cp "$here/runtests.sh" "$root/etc/sstrace-kernels/runtests.sh"
export KERNELS_RUN=${KERNELS_RUN:-.}
# Left out in the guests by default (make test runs them on the host): the
# soak, and the tests that exercise no kernel code but take minutes under
# TCG: the filter parser against ss's (TestParseAcceptsLikeSSRoot), random
# filters' evaluation (TestEvalMatchesSSRandomRoot; TestEvalMatchesSSRoot's
# fixed ones stay), and the encoders against encoding/json and their
# reference copies.
export KERNELS_SKIP=${KERNELS_SKIP:-^(TestLongRun|TestParseAcceptsLikeSSRoot|TestEvalMatchesSSRandomRoot|TestAppendSocketMatchesEncodingJSONFamilies|TestTraceEncoderMatchesLegacy|TestTableSeqIsTable)\$}
printf 'export KERNELS_TEST_TIMEOUT=%q KERNELS_RUN=%q KERNELS_SKIP=%q\n' "$KERNELS_TEST_TIMEOUT" "$KERNELS_RUN" "$KERNELS_SKIP" >"$root/etc/sstrace-kernels/env"
# An ext4 image rather than a big initramfs: the guests' root is then the
# same kind of file system as the host's. It matters: iproute2's ss resolves
# "cgroup /" with name_to_handle_at on the root file system, which gives an
# 8-byte handle on ext4 and fails on the tmpfs of an initramfs ("Invalid
# cgroup2 path"). Every boot opens it with snapshot=on: nothing a kernel's
# tests write reaches the next kernel.
size_mb=$(($(du -sm "$root" | cut -f1) * 3 / 2 + 256))
mke2fs -q -F -t ext4 -L sstrace -d "$root" "$work/root.img" "${size_mb}M"
log "root built in $(($(date +%s) - t0))s: $(du -sh "$root" | cut -f1) in a ${size_mb} MiB ext4 image"

# --- per kernel: the modules, in load order -----------------------------
# initramfs MODDIR OUT: busybox, init0 and the modules (decompressed), with
# their load order in /modules.
initramfs() {
	local moddir=$1 out=$2 abi kroot f n
	abi=$(basename "$moddir")
	kroot=$work/initramfs-$abi
	rm -rf "$kroot"
	mkdir -p "$kroot/lib/modules/$abi" "$kroot/bin" "$kroot/proc" "$kroot/sys" "$kroot/dev"
	cp /bin/busybox "$kroot/bin/busybox"
	for a in sh mount umount insmod mkdir sleep uname switch_root poweroff; do ln -s busybox "$kroot/bin/$a"; done
	cp "$here/init0" "$kroot/init"
	declare -A path=() seen=()
	while read -r f; do
		n=${f##*/}
		n=${n%%.ko*}
		path[${n//-/_}]=$f
	done < <(find "$moddir/kernel" -name '*.ko*')
	order=()
	visit() {
		local n=${1//-/_} f rel dst deps d
		[[ -z ${seen[$n]:-} ]] || return 0
		seen[$n]=1
		f=${path[$n]:-}
		if [[ -z $f ]]; then
			log "$abi: no module $n (built in?)"
			return 0
		fi
		rel=${f#"$moddir"/}
		rel=${rel%.xz}
		rel=${rel%.zst}
		dst=$kroot/lib/modules/$abi/$rel
		mkdir -p "$(dirname "$dst")"
		case $f in
		*.xz) xz -dc "$f" >"$dst" ;;
		*.zst) zstd -qdc "$f" >"$dst" ;;
		*) cp "$f" "$dst" ;;
		esac
		objcopy -O binary -j .modinfo "$dst" "$work/modinfo"
		deps=$(tr '\0' '\n' <"$work/modinfo" | sed -n 's/^depends=//p' | tr , ' ')
		for d in $deps; do visit "$d"; done
		order+=("$rel")
	}
	for m in $boot_modules $modules; do visit "$m"; done
	printf '%s\n' "${order[@]}" >"$kroot/modules"
	(cd "$kroot" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$out"
}

# --- boot ------------------------------------------------------------------
# boot LINE VMLINUZ INITRD DIR: one boot; 0 when init got to its start marker.
boot() {
	local line=$1 vmlinuz=$2 initrd=$3 dir=$4
	rm -f "$dir/console.log" "$dir/tests.log"
	timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 3G \
		-nodefaults -no-reboot -display none -monitor none \
		-kernel "$vmlinuz" -initrd "$initrd" \
		-drive "file=$work/root.img,format=raw,if=virtio,snapshot=on" \
		-append "console=ttyS0 rdinit=/init panic=-1 loglevel=4 random.trust_cpu=on" \
		-serial "file:$dir/console.log" -serial "file:$dir/tests.log" </dev/null >"$dir/qemu.log" 2>&1 || true
	grep -q '^SSTRACE-KERNELS-START' "$dir/tests.log" 2>/dev/null
}

run_line() {
	local line=$1 version=$2 vmlinuz=$3 moddir=$4 dir attempt status start
	dir=$results/$line
	rm -rf "$dir"
	mkdir -p "$dir"
	start=$(date +%s)
	if [[ $line == host ]]; then
		log "host: $(uname -r), the same test binaries, natively"
		{
			echo "SSTRACE-KERNELS-START $(uname -r) $(nproc) cpus"
			"$here/runtests.sh" "$repo" "$root/tests"
			echo "SSTRACE-KERNELS-END"
		} >"$dir/tests.log" 2>&1 || true
		attempt=1
	else
		initramfs "$moddir" "$work/initrd-$line"
		# A boot that never reaches init's marker, or a kernel that panics
		# (under TCG with 2 vCPUs, live kernel text patching now and then
		# ends in "Oops: int3"), is retried once.
		for attempt in 1 2; do
			log "$line: booting $version (attempt $attempt, timeout ${timeout_s}s)"
			if boot "$line" "$vmlinuz" "$work/initrd-$line" "$dir" && ! grep -q 'Kernel panic' "$dir/console.log"; then
				break
			fi
			log "$line: the kernel did not run the tests through; console:"
			grep -a -m1 -A3 -E 'Oops|BUG:|Kernel panic' "$dir/console.log" >&2 || tail -n 20 "$dir/console.log" >&2 || true
			for f in console tests; do
				cp "$dir/$f.log" "$dir/$f-attempt$attempt.log" 2>/dev/null || true
			done
		done
		rm -f "$work/initrd-$line"
	fi
	if ! grep -q '^SSTRACE-KERNELS-START' "$dir/tests.log" 2>/dev/null; then
		status="no-start"
	elif ! grep -q '^SSTRACE-KERNELS-END' "$dir/tests.log"; then
		status="no-end"
	else
		status="ok"
	fi
	# run.tsv: line, version, harness status, seconds, boots
	printf '%s\t%s\t%s\t%s\t%s\n' "$line" "$version" "$status" "$(($(date +%s) - start))" "$attempt" >>"$results/run.tsv"
	log "$line: $status in $(($(date +%s) - start))s"
}

: >"$results/run.tsv"
for l in $lines; do
	if [[ $l == host ]]; then
		run_line host "$(uname -r)" "" ""
		continue
	fi
	read -r _ version vmlinuz moddir < <(grep "^$l " "$work/kernels")
	run_line "$l" "$version" "$vmlinuz" "$moddir"
done

# --- the report ------------------------------------------------------------
$GO run ./testdata/kernels/report -results "$results" -known "$here/known-failures"
exit
}
