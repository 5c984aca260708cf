#!/bin/sh
# runtests.sh SRC TESTS: run every test binary listed in TESTS/list ("PKG
# BINARY" lines) from SRC/PKG, its package's directory, as go test would.
# Used by init inside each VM (busybox sh) and for the host's own kernel.
# Output is -test.v=test2json (the host turns it into test2json events),
# each package between markers the harness splits on:
#   SSTRACE-KERNELS-BEGIN PKG / SSTRACE-KERNELS-EXIT PKG STATUS SECONDS
# and, first, sstrace doctor -j between SSTRACE-KERNELS-DOCTOR-BEGIN/END.
# The long soak (TestLongRun) is skipped: make test runs it.
src=$1
tests=$2
# What this kernel allows, as doctor says (docs/KERNELS.md's capability
# table is made from it): one JSON document between its markers.
if [ -x "$tests/helpers/sstrace" ]; then
	echo
	echo "SSTRACE-KERNELS-DOCTOR-BEGIN"
	SSTRACE_BPF_OBJECT= "$tests/helpers/sstrace" doctor -j </dev/null 2>&1
	echo
	echo "SSTRACE-KERNELS-DOCTOR-END"
fi
while read -r pkg bin; do
	echo
	echo "SSTRACE-KERNELS-BEGIN $pkg"
	start=$(date +%s)
	(cd "$src/$pkg" && SSTRACE_TEST_HELPERS=$tests/helpers "$tests/$bin" -test.v=test2json -test.count=1 \
		-test.timeout="${KERNELS_TEST_TIMEOUT:-20m}" -test.run="${KERNELS_RUN:-.}" -test.skip="${KERNELS_SKIP:-^TestLongRun$}" </dev/null 2>&1)
	status=$?
	echo
	echo "SSTRACE-KERNELS-EXIT $pkg $status $(($(date +%s) - start))"
done <"$tests/list"
