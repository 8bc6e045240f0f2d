# The README's two commands are `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/renewer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/renewer/renewer/internal/cli.Version=$(VERSION)

.PHONY: all build build-lean demo test check fuzz soak bench bench-idle bench-ari clean

all: build

## build: a static renewer binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/renewer

## build-lean: for a single server: no fleet mode (no etcd client), and only the DNS
## providers without vendor SDKs (rfc2136, acme-dns, exec, httpreq); a 17 MB binary
## that needs some 27 MB less memory
build-lean:
	CGO_ENABLED=0 $(GO) build -tags lean -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/renewer

## demo: a local Pebble CA, two real certificates issued, installed, hooked and reported
demo:
	$(GO) run ./examples/demo

## test: formatting, vet, and every test with the race detector
test: check
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -tags lean -count=1 -run '^TestLean' ./cmd/renewer

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags lean ./cmd/renewer

## fuzz: each fuzz target for a short while (FUZZTIME=1m for longer)
FUZZTIME ?= 15s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/certinfo

## soak: the long reliability runs (200 crash kills); prints the figures
soak:
	RENEWER_CRASH_KILLS=200 $(GO) test -count=1 -timeout 60m -run 'TestCrashSafety' -v ./cmd/renewer 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|kills|seed'

## bench: renewer side by side with certbot and the lego CLI against a local Pebble, all
## scenarios of issue 9 (about 10 minutes); prints the table and writes bench/results.md.
## Installs certbot (Debian package) if missing; builds lego in a temporary directory.
BENCHFLAGS ?=
bench:
	@command -v certbot >/dev/null 2>&1 || { \
	  echo "make bench: installing certbot (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y certbot; \
	  else sudo apt-get update && sudo apt-get install -y certbot; fi; }
	$(GO) run ./bench/compare -out bench/results.md $(BENCHFLAGS)

## bench-idle: the idle daemon's RSS and CPU with 1,000 certificates over 60s (a benchmark, not a test)
bench-idle:
	bash bench/idle-daemon.sh 1000 60

## bench-ari: renewal-information checks of 1,000 certificates against a local Pebble (a benchmark)
bench-ari:
	$(GO) run ./bench/ari -n 1000

clean:
	rm -rf bin .demo
