# tokenshift: the two commands a new user needs are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/tokenshift
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
PKGS    := ./...
# Flags of `make bench-peers` (see internal/benchpeers: -rounds, -duration, -stacks, -smoke).
BENCH_PEERS_ARGS ?=
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 30s

.PHONY: run build test lint bench bench-peers fuzz clean

## run: start the service on the embedded development defaults (no Redis needed)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/tokenshift serve

## build: build bin/tokenshift
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tokenshift

## test: vet, then every test (unit, fuzz seed corpora, end-to-end on real Redis), then a smoke round of the peer benchmark harness
test: lint
	$(GO) test -count=1 -timeout 8m $(PKGS)
	cd internal/benchpeers && $(GO) test -count=1 -timeout 10m ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd internal/benchpeers && $(GO) vet ./...

## bench: every benchmark, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

## bench-peers: tokenshift per scheme and store against bare Fiber, Fiber session on Redis, gofiber/contrib/jwt, oauth2-proxy and Express on 127.0.0.1, as ratios to bare from one run (5 rounds x 5 s, ~13 min; BENCH_PEERS_ARGS='-rounds 3 -stacks oauth2')
bench-peers:
	cd internal/benchpeers && $(GO) run . $(BENCH_PEERS_ARGS)

## fuzz: run every fuzz target for FUZZTIME (default 30s) each; minimizing a crasher is capped at 5s (bcrypt inputs shrink slowly)
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
	  done; \
	done

clean:
	rm -rf bin
