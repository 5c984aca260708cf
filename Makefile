# sstrace: ss with a memory. `make help` lists the targets.
#
# Tests load real BPF programs and open sockets inside network namespaces
# they create: run them as root (sudo make test).

GO        ?= go
BINARY    ?= ./sstrace
ARGS      ?= -tanp
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# Debian packages the tests and the generate check need.
DEB_PACKAGES := iproute2 clang llvm bpftool nftables gcc procps

export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

.PHONY: help deps deps-kernels test-kernels kernels-doc generate check-generated build run test test-variants unit lint fuzz bench bench-go bench-list bench-tracer bench-startup clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## install the Debian packages the tests need (only those missing)
	@missing=""; \
	for c in ss:iproute2 clang:clang llvm-strip:llvm bpftool:bpftool nft:nftables gcc:gcc sysctl:procps; do \
		command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# What make test-kernels needs besides make deps: QEMU, a static busybox for
# the guests, cpio for their initramfs, xz for the 6.12+ modules, util-linux's
# setpriv (the tests run it in the guests), e2fsprogs for the root image,
# binutils' objcopy to read module dependencies.
KERNEL_PACKAGES := qemu-system-x86 busybox-static cpio xz-utils util-linux e2fsprogs binutils
deps-kernels: deps ## install the Debian packages test-kernels needs (only those missing)
	@missing=""; \
	for p in $(KERNEL_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The kernel matrix: Debian's newest cloud kernels of bullseye (5.10),
# bookworm (6.1), trixie (6.12) and sid under QEMU (TCG), plus this machine's
# own ("host"), each running the test binaries of the packages with root
# tests (TestLongRun left to make test). KERNELS picks lines; downloads are
# cached in KERNELS_CACHE; known failures are in testdata/kernels/known-failures.
KERNELS        ?= 5.10 6.1 6.12 sid host
KERNELS_CACHE  ?= /var/cache/sstrace-kernels
KERNELS_RESULTS ?= $(KERNELS_CACHE)/results
test-kernels: deps-kernels ## run the root tests on Debian's 5.10, 6.1, 6.12, sid kernels (QEMU) and this one (KERNELS=...)
	KERNELS="$(KERNELS)" KERNELS_CACHE="$(KERNELS_CACHE)" KERNELS_RESULTS="$(KERNELS_RESULTS)" GO="$(GO)" testdata/kernels/run.sh

kernels-doc: ## rewrite the capability and test tables of docs/KERNELS.md from the last test-kernels results
	$(GO) run ./testdata/kernels/report -results "$(KERNELS_RESULTS)" -known testdata/kernels/known-failures -doc docs/KERNELS.md

generate: ## rebuild the BPF objects (bpf/*_bpfel.{go,o}) with clang
	cd bpf && $(GO) generate ./...

check-generated: deps ## fail if the committed BPF objects do not match bpf/*.c
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cp -r bpf go.mod go.sum $$tmp/ && (cd $$tmp/bpf && $(GO) generate ./...) && \
	for f in bpf/*_bpfel.go bpf/*_bpfel.o; do \
		cmp -s $$f $$tmp/$$f || { echo "$$f is stale: run make generate and commit"; exit 1; }; \
	done && echo "generated BPF objects match bpf/*.c"

build: ## build ./sstrace (no clang needed: generated objects are committed)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BINARY) ./cmd/sstrace

run: build ## build and list sockets with their processes (ARGS=-tanp)
	$(BINARY) $(ARGS)

# The long run (cmd/sstrace TestLongRun) churns for 10 minutes when CI=true,
# 2 minutes otherwise, or SSTRACE_LONGRUN (a Go duration); -short skips it.
test: deps check-generated lint ## everything CI runs: generate check, lint, all tests (as root)
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory test-variants

# Each BPF program has variants (btf, core, core-5.10: tracer/variants.go),
# and a kernel loads the best it can. The suites that load programs run
# again from the later objects, so that every variant is proven to give
# the same answers on this kernel too, not only on the kernels that need it.
test-variants: ## the tracer and snapshot suites again, from the core and core-5.10 BPF objects (as root)
	SSTRACE_BPF_OBJECT=core $(GO) test -count=1 ./tracer/... ./snapshot/...
	SSTRACE_BPF_OBJECT=core-5.10 $(GO) test -count=1 ./tracer/... ./snapshot/...

unit: ## the tests that need no root
	$(GO) test -count=1 -short ./...

lint: ## gofmt, go vet, staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$bad" ] || { echo "gofmt: $$bad"; exit 1; }
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...

FUZZTIME ?= 60s
fuzz: ## run every fuzz target for FUZZTIME each
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./tracer/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./snapshot/
	$(GO) test -run='^$$' -fuzz='^FuzzParseServices$$' -fuzztime=$(FUZZTIME) ./cmd/sstrace/render/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./snapshot/filter/
	$(GO) test -run='^$$' -fuzz='^FuzzParseSockstat$$' -fuzztime=$(FUZZTIME) ./snapshot/
	$(GO) test -run='^$$' -fuzz='^FuzzProcNet$$' -fuzztime=$(FUZZTIME) ./snapshot/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeDiag$$' -fuzztime=$(FUZZTIME) ./snapshot/
	$(GO) test -run='^$$' -fuzz='^FuzzProcFromMaps$$' -fuzztime=$(FUZZTIME) ./tracer/symbol/
	$(GO) test -run='^$$' -fuzz='^FuzzReadRecording$$' -fuzztime=$(FUZZTIME) ./cmd/sstrace/
	$(GO) test -run='^$$' -fuzz='^FuzzTraceEncoder$$' -fuzztime=$(FUZZTIME) ./cmd/sstrace/

# make bench (as root): every part below, one after the other. Sizes:
# BENCH_SOCKETS (the listing), BENCH_CHURN (iterations of each churn
# workload), BENCH_STARTUP_SOCKETS (start-up and RSS), BENCH_RUNS (runs of
# each command, alternating; medians).
BENCH_SOCKETS ?= 10000
BENCH_RUNS    ?= 5
BENCH_CHURN   ?= 100000
BENCH_STARTUP_SOCKETS ?= 100000
# BENCH_BASELINE: another sstrace binary (say, built from main) that the
# tracer and start-up benchmarks run in the same alternation, for a
# before/after from the same minutes of a shared machine.
BENCH_BASELINE ?=
# -p 1: one package's benchmarks at a time (go test runs packages in parallel).
BENCH_GO      = $(GO) test -p 1 -run='^$$' -bench=. -benchmem ./...
BENCH_LIST    = testdata/bench/run.sh $(BINARY) $(BENCH_SOCKETS) $(BENCH_RUNS)
BENCH_TRACER  = testdata/bench/tracer.sh $(BINARY) $(BENCH_CHURN) $(BENCH_RUNS) $(BENCH_BASELINE)
BENCH_STARTUP = testdata/bench/startup.sh $(BINARY) $(BENCH_STARTUP_SOCKETS) $(BENCH_RUNS) $(BENCH_BASELINE)
bench: deps build ## all of: bench-go, bench-list, bench-tracer, bench-startup (as root)
	$(BENCH_GO)
	$(BENCH_LIST)
	$(BENCH_TRACER)
	$(BENCH_STARTUP)

bench-go: ## Go benchmarks of the hot paths (decode, filter, render, overlay)
	$(BENCH_GO)

bench-list: deps build ## ss and sstrace listings side by side (BENCH_SOCKETS, BENCH_RUNS)
	$(BENCH_LIST)

bench-tracer: deps build ## churn bare, under trace and under watch (BENCH_CHURN, BENCH_RUNS)
	$(BENCH_TRACER)

bench-startup: deps build ## time to first row and RSS, -tan and watch -tan (BENCH_STARTUP_SOCKETS, BENCH_RUNS)
	$(BENCH_STARTUP)

clean: ## remove the built binary
	rm -f $(BINARY)
