# NovaEdge — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
BIN   := bin/novaedge
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: help run build test test-short bench check fuzz tools plugins-testdata plugins-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

run: ## the reference API gateway on localhost:8080 with three demo services (Ctrl-C stops)
	$(GO) run ./cmd/novaedge demo

build: ## build bin/novaedge
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/novaedge

test: ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## the tests without -race (quicker)
	$(GO) test -count=1 $(PKGS)

bench: build ## Go benchmarks (router, LB) and the end-to-end load comparison
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./host/proxy/ ./host/upstream/ ./host/wasm/
	$(GO) run ./cmd/loadbench -novaedge $(BIN)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

check: ## gofmt, go vet, go mod tidy leaves the tree clean
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@cp go.mod /tmp/novaedge.go.mod.bak; cp go.sum /tmp/novaedge.go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changed go.mod/go.sum:"; git diff -- go.mod go.sum; \
	  cp /tmp/novaedge.go.mod.bak go.mod; cp /tmp/novaedge.go.sum.bak go.sum; exit 1; fi

tools: ## install what benchmarks use (wrk) and TinyGo for the wasm plugins, idempotently
	@command -v wrk >/dev/null || { (apt-get update -qq && apt-get install -y -qq wrk) || echo "wrk not installed: loadbench falls back to its Go load generator"; }
	bash plugins/toolchain/install-tinygo.sh

plugins-testdata: ## rebuild the proxy-wasm test plugins (host/wasm/testdata/*.wasm) with TinyGo, Go and clang
	bash host/wasm/testdata/build.sh

plugins-check: ## rebuild the test plugins into a temporary directory; fail if any differs from the committed one
	bash host/wasm/testdata/build.sh --check

clean: ## remove build output
	rm -rf bin
