# NovaEdge — `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
# sdk/ and plugins/ are Go modules of their own (TinyGo needs go <= 1.25).
SUBMODS := sdk plugins
BIN   := bin/novaedge
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: help run build test test-short bench check fuzz tools plugins plugins-testdata plugins-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

run: ## the reference API gateway on localhost:8080 (HTTP) and :8443 (HTTPS, dev CA) with three demo services (Ctrl-C stops)
	$(GO) run ./cmd/novaedge demo

build: ## build bin/novaedge
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/novaedge

test: ## every test, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@set -e; for m in $(SUBMODS); do (cd $$m && $(GO) test -race -count=1 ./...); done

test-short: ## the tests without -race (quicker)
	$(GO) test -count=1 $(PKGS)
	@set -e; for m in $(SUBMODS); do (cd $$m && $(GO) test -count=1 ./...); done

# loadbench: each of its 10 lines gets a 2 s warm-up, then BENCH_ROUNDS rounds of
# BENCH_DURATION (the table shows the medians): about 3 minutes with the defaults.
BENCH_ROUNDS   ?= 3
BENCH_DURATION ?= 5s
bench: build ## Go benchmarks (router, LB, module swaps, compression, cache hit vs upstream) and the end-to-end comparison table (direct, nginx, haproxy, ReverseProxy, NovaEdge; plain and with policies)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./host/proxy/ ./host/upstream/ ./host/wasm/ ./host/compress/ ./host/cache/
	$(GO) test -run "^$$" -bench . -benchmem -count 1 ./host/policy/ ./examples/api-gateway/
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./cmd/novaedge/
	$(GO) run ./cmd/loadbench -novaedge $(BIN) -rounds $(BENCH_ROUNDS) -d $(BENCH_DURATION)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for mod in . $(SUBMODS); do (cd $$mod && for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done); done

check: plugins-check ## gofmt, go vet, go mod tidy leaves the tree clean; the committed plugins rebuild byte-identical (needs make tools)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@set -e; for m in $(SUBMODS); do (cd $$m && $(GO) vet ./...); done
	@set -e; for d in . $(SUBMODS); do \
	  cp $$d/go.mod /tmp/novaedge.go.mod.bak; cp $$d/go.sum /tmp/novaedge.go.sum.bak; \
	  (cd $$d && $(GO) mod tidy); \
	  if ! git diff --quiet -- $$d/go.mod $$d/go.sum; then echo "go mod tidy changed $$d/go.mod or go.sum:"; git diff -- $$d/go.mod $$d/go.sum; \
	    cp /tmp/novaedge.go.mod.bak $$d/go.mod; cp /tmp/novaedge.go.sum.bak $$d/go.sum; exit 1; fi; \
	done

tools: ## install what benchmarks use (wrk; nginx and haproxy, the peers of make bench), TinyGo for the wasm plugins and the AssemblyScript test plugin's npm packages, idempotently
	@command -v wrk >/dev/null || { (apt-get update -qq && apt-get install -y -qq wrk) || echo "wrk not installed: loadbench falls back to its Go load generator"; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { (apt-get update -qq && { apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; }) || echo "nginx not installed: loadbench reports its lines as not installed"; }
	@command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { (apt-get update -qq && apt-get install -y -qq haproxy) || echo "haproxy not installed: loadbench reports its lines as not installed"; }
	bash plugins/toolchain/install-tinygo.sh
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	bash host/wasm/testdata/build.sh --deps

plugins: ## build the bundled policy plugins (plugins/*) with TinyGo into host/policy/bundled
	bash plugins/build.sh

plugins-testdata: ## rebuild the proxy-wasm test plugins (host/wasm/testdata/*.wasm) with TinyGo, Go, clang and AssemblyScript
	bash host/wasm/testdata/build.sh

plugins-check: ## rebuild the bundled and the test plugins into a temporary directory; fail if any differs from the committed one
	bash plugins/build.sh --check
	bash host/wasm/testdata/build.sh --check

clean: ## remove build output
	rm -rf bin
