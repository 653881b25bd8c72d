# qledger: the targets a newcomer and CI use. Only Go is needed; the other
# tools (staticcheck) are pinned in go.mod's tool directive, so the module
# cache and `go mod download` cover them like every other dependency.
GO        ?= go
BIN       ?= bin
PKGS      := ./...
# -tags contract: every API server in the tests checks each exchange
# against api/openapi.yaml (package api/contract); a breach fails the run.
TEST_FLAGS ?= -race -p 1 -timeout 30m -tags contract

.PHONY: browser all build test unit integration demo dev bench lint fmt clean examples staticcheck fuzz

all: build

build:
	$(GO) build -o $(BIN)/qledger ./cmd/qledger

# FULL_SIZE_PKGS: packages whose tests shrink or skip their largest cases
# under the race detector (each sets a raceEnabled from a race-tagged test
# file): the 64 MiB streaming memory bound, the 1 MiB multi-segment split,
# 100 Cascade runs, exhaustive Merkle proofs, the README walk with the
# Go-built example functions. test runs them once more
# without -race so that CI checks the full sizes too.
FULL_SIZE_PKGS := ./api/client/ ./chain/ ./cmd/qledger/ ./qkd/ ./sharing/

# SIDE_PKGS: the two packages that run whole clusters of separate
# processes: the fault suite (nodes in their own network namespaces)
# and the integration tests. Much of their time is spent holding a fault
# or waiting out an election, with the cores half idle, so test runs
# them, one after the other, beside the rest of the suite rather than
# after it: on 2 cores a run with no test results cached takes about 11
# minutes instead of 19.
# Every cluster test is meant to pass on a loaded machine, and this is
# one.
SIDE_PKGS  := ./integration/faults/ ./integration/
OTHER_PKGS  = $(shell $(GO) list ./... | grep -v '/integration/faults$$' | grep -v '/integration$$')

# BENCH_PKGS: every package with a Go benchmark (func Benchmark...).
BENCH_PKGS = $(shell grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)

## test: the whole suite CI runs (lint, unit, integration with -race),
## then the full-size tests without -race (among them
## TestBenchCommandsRun, which runs every qledger bench command line of
## docs/BENCHMARKS.md and make bench, shrunk), then every Go benchmark
## once (bench-smoke), so that no benchmark rots unseen. The fault
## suite and the integration tests (SIDE_PKGS) run beside all of that;
## their output is printed when both lanes are done.
test: lint
	@side_log=$$(mktemp); \
	echo "$(GO) test $(TEST_FLAGS) $(SIDE_PKGS) (beside the rest; output below when done)"; \
	$(GO) test $(TEST_FLAGS) $(SIDE_PKGS) >$$side_log 2>&1 & side=$$!; \
	$(GO) test $(TEST_FLAGS) $(OTHER_PKGS) && \
	$(GO) test -p 1 -timeout 15m $(FULL_SIZE_PKGS) && \
	$(MAKE) --no-print-directory bench-smoke; rest=$$?; \
	wait $$side; side_rc=$$?; \
	echo "--- $(SIDE_PKGS), run beside the rest:"; cat $$side_log; rm -f $$side_log; \
	test $$rest -eq 0 && test $$side_rc -eq 0

## bench-smoke: every Go benchmark, one iteration each; fails on any error.
.PHONY: bench-smoke
bench-smoke:
	$(GO) test -p 1 -short -run '^$$' -bench . -benchtime 1x $(BENCH_PKGS)

## browser: install Debian's chromium for the explorer's browser tests
## (integration/explorer_test.go) when it is missing; needs root.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

unit:
	$(GO) test $(TEST_FLAGS) $(shell $(GO) list ./... | grep -v /integration)

integration:
	$(GO) test $(TEST_FLAGS) ./integration/...

## examples: build the example functions (.wasm) into examples/functions.
examples:
	$(GO) run ./examples/functions/tinygen -go -o examples/functions

## demo: start an embedded cluster, run the main scenario, print a report.
demo:
	$(GO) run ./cmd/qledger demo

## dev: an embedded 2-group × 3-replica cluster on 127.0.0.1:8080.
dev:
	$(GO) run ./cmd/qledger dev

## bench: Go benchmarks plus the ledger-vs-bare-raft comparison.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./chain/ ./fsm/
	$(BIN)/qledger bench
	$(BIN)/qledger bench tls
	$(BIN)/qledger bench membership

## torture: long random fault schedules (integration/faults) against
## separate node processes in network namespaces; needs root. TORTURE_RUNS
## runs of TORTURE each, every run with its own printed seed; each run's
## table is appended to TORTURE_REPORT. TORTURE_VOTERS is each group's
## size (3 or 5), TORTURE_GROUPS the number of groups (1 or 2; with 2,
## each step's nemesis acts on one group while the other must keep
## committing). make test runs the short schedule.
TORTURE        ?= 10m
TORTURE_RUNS   ?= 3
TORTURE_VOTERS ?= 3
TORTURE_GROUPS ?= 1
TORTURE_REPORT ?= torture-report.md
.PHONY: torture
torture:
	@set -e; for i in $$(seq $(TORTURE_RUNS)); do \
		QLEDGER_TORTURE=$(TORTURE) QLEDGER_FAULTS_VOTERS=$(TORTURE_VOTERS) QLEDGER_FAULTS_GROUPS=$(TORTURE_GROUPS) QLEDGER_FAULTS_REPORT=$(abspath $(TORTURE_REPORT)) \
			$(GO) test -v -p 1 -count=1 -timeout 3h -run '^TestTorture$$' ./integration/faults/; \
	done

## fuzz: run every fuzz target (found with go test -list) for FUZZTIME each,
## starting from its seed corpus in testdata/fuzz/<FuzzName>/. New failing
## inputs land there too: fix the bug, then commit them as regression seeds.
FUZZTIME  ?= 10s
FUZZFLAGS ?=
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; exit 1; }; \
		for target in $$(echo "$$list" | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg; \
		done; \
	done

## lint: gofmt, go vet, and staticcheck (the version go.mod pins as a tool).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags contract ./api/
	$(GO) tool staticcheck $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
