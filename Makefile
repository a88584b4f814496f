# The Makefile is skein's interface: CI runs `make test` and nothing else.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 1s
BENCHCOUNT  ?= 6
FUZZTIME    ?= 10s
BENCHJOBS_RUNS ?= 3

.PHONY: help test vet lint test-race test-bench bench bench-jobs fuzz tidy

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

test: vet lint test-race test-bench ## Everything CI runs: vet, staticcheck, race tests, bench-module tests.

vet: ## go vet both modules.
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

lint: ## staticcheck both modules (fetched from the module proxy, pinned).
	$(STATICCHECK) ./...
	cd bench && $(STATICCHECK) ./...

test-race: ## All tests of the main module with the race detector.
	$(GO) test -race -count=1 ./...

test-bench: ## The bench module's own tests (peers do the same work as skein).
	cd bench && $(GO) test -race -count=1 ./...

bench: ## Side-by-side benchmarks against peers; figures go to docs/BENCHMARKS.md.
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./... | tee bench.out

bench-jobs: ## Jobs beside River and Asynq (BENCHJOBS_RUNS runs, medians): starts PostgreSQL and Redis on loopback, prints JSON lines and a table.
	cd bench && $(GO) run ./cmd/benchjobs -repo .. -runs $(BENCHJOBS_RUNS)

fuzz: ## Short runs of every fuzz target (FUZZTIME each).
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

tidy: ## go mod tidy both modules.
	$(GO) mod tidy
	cd bench && $(GO) mod tidy
