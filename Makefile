# panvault — a thin facade over the go tool. CI calls `make test` (through .ci/run).
GO        ?= go
PKGS      := ./...
# Packages with goroutines and shared state: always tested under the race detector.
RACE_PKGS := ./keys/... ./raftstore/... ./vault/... ./softhsm/... ./cmd/...
FUZZTIME  ?= 20s
BIN       := bin/panvault
DEV_DIR   ?= $(CURDIR)/.dev

.PHONY: all build test test-short bench bench-large fuzz lint proto dev clean tools

all: build

build:
	$(GO) build -o $(BIN) ./cmd/panvault

# The full suite against real SoftHSM, real Raft over loopback TCP, real bbolt.
# CI=true turns a missing SoftHSM into a failure instead of a skip.
test: lint
	$(GO) test -race -count=1 -timeout 25m $(RACE_PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Benchmarks of issue #6 in one run (under 10 minutes): the Go
# micro-benchmarks of keys, keys/fpe, raftstore and vault/scheme, then
# `panvault bench --matrix`: raw limits (fsync, SoftHSM, gRPC, raft) and the
# cluster workloads on local 3-node clusters. Writes BENCHMARKS.md; see
# docs/performance.md for what the figures mean. The workload with 5,000,000
# tokens stored needs their prefill first (minutes on 2 cores): it is
# `make bench-large`, which writes BENCHMARKS-large.md with its own empty-vault
# baseline and raw limits from the same run.
BENCH_PKGS  := ./keys/ ./keys/fpe/ ./raftstore/ ./vault/scheme/
BENCH_FLAGS := -run '^$$' -bench . -benchmem -benchtime 100ms -count 5 -p 1
bench: build
	@{ $(GO) test $(BENCH_FLAGS) -timeout 10m $(BENCH_PKGS); echo $$? > bench.status; } | tee bench.out; \
	  st=$$(cat bench.status); rm -f bench.status; [ "$$st" = 0 ] || { echo "micro-benchmarks failed"; exit 1; }
	./$(BIN) bench --matrix --skip tokenize-5m --duration 5s --warmup 1s --micro bench.out \
	  --micro-command "go test $(BENCH_FLAGS) $(BENCH_PKGS)" --out BENCHMARKS.md --command 'make bench' \
	  --note 'The workload with 5,000,000 tokens stored needs their prefill first, which takes minutes on 2 cores: `make bench-large` measures it, with an empty-vault baseline and raw limits of its own run, into BENCHMARKS-large.md.'

bench-large: build
	./$(BIN) bench --matrix --only tokenize,tokenize-5m --duration 5s --warmup 1s \
	  --prefill-batch 1000 --out BENCHMARKS-large.md --command 'make bench-large'

# Each fuzz target gets a short budget; go test -fuzz accepts one target at a time.
fuzz:
	@set -e; for spec in $$(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sort -u | sed 's/^func //'); do \
	  pkg=$$(grep -rlE --include='*_test.go' "^func $$spec\(" . | head -1 | xargs dirname); \
	  echo "== $$pkg $$spec ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$spec\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Regenerate protobuf Go code with pinned generators (see scripts in proto/).
proto:
	./proto/gen.sh

# One command: a local 3-node cluster on SoftHSM with a dev CA; runs until interrupted.
dev: build
	./$(BIN) dev --nodes 3 --dir $(DEV_DIR)

clean:
	rm -rf bin bench.out bench.status
