# The README's two commands are `make demo` and `make test`.
GO      ?= go
BIN     ?= bin/renewer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/renewer/renewer/internal/cli.Version=$(VERSION)

.PHONY: all build build-lean deb demo test check fuzz soak bench bench-idle bench-ari clean

all: build

## build: a static renewer binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/renewer

## build-lean: for a single server: no fleet mode (no etcd client), and only the DNS
## providers without vendor SDKs (rfc2136, acme-dns, exec, httpreq); an 18 MB binary
## that needs about 30 MB less memory (the SDKs' start-up touches much of a 67 MB binary)
build-lean:
	CGO_ENABLED=0 $(GO) build -tags lean -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/renewer

## deb: the Debian package bin/renewer_VERSION_amd64.deb (nfpm as a Go library:
## internal/debpkg; units from examples/systemd, the rest from examples/debian)
deb: build
	$(GO) run ./internal/debpkg/mkdeb -binary $(BIN) -version '$(VERSION)' -examples examples -out bin

## demo: a local Pebble CA, two real certificates issued, installed, hooked and reported
demo:
	$(GO) run ./examples/demo

# GORACE: the race detector's options for make test (a short sleep at exit: see test)
GORACE ?= atexit_sleep_ms=50
SLOW_PKGS := ./internal/hosttest ./internal/fleet ./cmd/renewer ./internal/agent ./internal/acme ./internal/bench/drill ./internal/e2e
## test: formatting, vet, every test with the race detector, then each fuzz target for 5s
test: check
	@# step-ca (a test CA, a go tool) builds cold in minutes: once, here, not inside a test's timeout
	CGO_ENABLED=0 $(GO) tool -n step-ca >/dev/null
	@# go test starts packages in the order given: the longest first. The long ones
	@# mostly wait (on Pebble, etcd, a container, a daemon's schedule), so five run at
	@# once even on 2 cores. GORACE: a race-built process sleeps 1 s at exit by default,
	@# and the CLI scripts run the race-built renewer 63 times. GOGC=400: less garbage
	@# collection in the race-built tests and their links (24 GB is plenty). -vet=off:
	@# check ran go vet already.
	GOGC=400 GORACE='$(GORACE)' $(GO) test -race -vet=off -count=1 -timeout 20m -p 5 $(SLOW_PKGS) ./...
	$(GO) test -tags lean -count=1 -run '^TestLean' ./cmd/renewer
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags lean ./cmd/renewer

## fuzz: each fuzz target for FUZZTIME (default 15s; FUZZTIME=10m for longer); prints
## each target's final "execs" line and keeps the whole output in bin/fuzz/<target>.log.
## A run that ends with the fuzzing engine's own "context deadline exceeded" (a worker
## not stopping in time at the deadline, with no failing input written) is run once more;
## a real failure writes its input to testdata/fuzz and fails every run.
FUZZTIME       ?= 15s
FUZZTIME_SHORT ?= 5s
FUZZ_TARGETS   := internal/config:FuzzParse internal/certinfo:FuzzParse internal/store:FuzzState internal/acme:FuzzHTTP01
fuzz:
	@mkdir -p bin/fuzz; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; log=bin/fuzz/$$(echo $$pkg | tr / _)_$$fn.log; \
	  run() { $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg >$$log 2>&1; }; \
	  run || { ! grep -q 'Failing input written' $$log && grep -q '^    context deadline exceeded$$' $$log && \
	    { echo "fuzz $$pkg $$fn: the engine missed its deadline (no failing input); once more"; run; }; } || { cat $$log; exit 1; }; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME)): $$(grep 'execs:' $$log | tail -n 1 | sed 's/^fuzz: //')"; \
	done

## soak: the long reliability runs, about half an hour: 200 SIGKILLs of `renew --force`
## (TestCrashSafety) and 100 certificates through 3 rounds of CA faults and outages
## (TestCAFaults); prints the figures, keeps the whole output in bin/soak.log
SOAK_KILLS  ?= 200
SOAK_CERTS  ?= 100
SOAK_ROUNDS ?= 3
soak:
	@mkdir -p bin
	RENEWER_CRASH_KILLS=$(SOAK_KILLS) RENEWER_FAULT_CERTS=$(SOAK_CERTS) RENEWER_FAULT_ROUNDS=$(SOAK_ROUNDS) RENEWER_FAULT_NONCEREJECT=50 \
	  bash -o pipefail -c "$(GO) test -count=1 -timeout 90m -run '^(TestCrashSafety|TestCAFaults)\$$' -v ./cmd/renewer ./internal/agent 2>&1 \
	  | tee bin/soak.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|kill|seed|summary|faults:|round [0-9]+ |panic'"

## bench: renewer side by side with certbot and the lego CLI against a local Pebble, all
## scenarios of issue 9 (about 10 minutes); prints the table and writes internal/bench/results.md.
## Installs certbot (Debian package) if missing; builds lego in a temporary directory.
## First: the peak heap of loading 10,000 certificates from one file and from conf.d files.
BENCHFLAGS ?=
bench:
	$(GO) test -run '^$$' -bench '^BenchmarkLoadPeak$$' -benchtime 1x ./internal/config
	@command -v certbot >/dev/null 2>&1 || { \
	  echo "make bench: installing certbot (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y certbot; \
	  else sudo apt-get update && sudo apt-get install -y certbot; fi; }
	$(GO) run ./internal/bench/compare -out internal/bench/results.md $(BENCHFLAGS)

## bench-idle: the idle daemon's RSS and CPU with 1,000 certificates over 60s (a benchmark, not a test)
bench-idle:
	bash internal/bench/idle-daemon.sh 1000 60

## bench-ari: renewal-information checks of 1,000 certificates against a local Pebble, then
## the mass-revocation drill: 1,000 certificates under a running daemon, their ARI windows
## moved into the past by Pebble, all replaced (benchmarks; `make bench` runs both)
bench-ari:
	$(GO) run ./internal/bench/ari -n 1000 -drill 1000

clean:
	rm -rf bin .demo
