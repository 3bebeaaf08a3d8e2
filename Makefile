# The project's commands. `make run` starts the reference server; `make test` runs every test.
GO ?= go
GOFILES = $(shell find . -name '*.go' -not -path './node_modules/*')

.PHONY: banner all generate check-generate build test test-postgres test-python test-node vet fmt-check lint run bench bench-baseline bench-load fuzz

all: build

ADDR ?= 127.0.0.1:8080
ADMIN_TOKEN ?= demo-admin-token

DB ?= data/qrserver.db

## run: the reference server on $(ADDR) with the demo seed, the control API and an audit
## log, on $(DB): a SQLite file, or a postgres:// URL (make run DB=postgres://…)
run: banner
	@mkdir -p data
	@echo "Building and starting qrserver on $(ADDR) (the first build with empty Go caches took 80 s on a 2-core machine)..."
	$(GO) run ./cmd/qrserver --addr $(ADDR) --db '$(DB)' --seed seed/demo.yaml \
		--admin-token $(ADMIN_TOKEN) --audit-log data/audit.jsonl

## banner: the demo seed's keys, CRNs and URLs, at $(ADDR)
banner:
	@sed 's#127\.0\.0\.1:8080#$(ADDR)#g' seed/demo.txt

## bench: the Go micro-benchmarks (validation, auth, store, whole stack), compared with
## benchstat against the saved baseline bench/baseline.txt (make bench-baseline saves one)
BENCH = $(GO) test -run '^$$' -bench . -benchmem -count 6 ./spec/ ./sqlite/ ./server/
bench:
	@mkdir -p bench
	$(BENCH) | tee bench/latest.txt
	$(GO) run golang.org/x/perf/cmd/benchstat bench/baseline.txt bench/latest.txt

bench-baseline:
	@mkdir -p bench
	$(BENCH) | tee bench/baseline.txt

## bench-load: qrserver (on SQLite, and on PostgreSQL as one and as two replicas), a bare
## echo baseline and Prism loaded side by side (bench/loadgen): bench/results.json, and
## the chart bench/results.svg (go run ./bench/loadgen --plot-from bench/results.json
## redraws it). PostgreSQL: the server $(PG)
## names, else a throwaway one that deploy/postgres.sh starts and stops.
PG ?=
# Each PostgreSQL replica's GOMAXPROCS; 0: Go's default, the number of cores. (1 caps one
# replica below the machine, which flatters two replicas against it: README.)
REPLICA_GOMAXPROCS ?= 0
BENCH_OUT ?= bench/results.json
bench-load: node_modules/.package-lock.json
	@mkdir -p bin
	$(GO) build -o bin/qrserver ./cmd/qrserver
	$(GO) build -o bin/baseline ./bench/baseline
	@set -e; pg='$(PG)'; \
	if [ -z "$$pg" ]; then dir=$$(mktemp -d); trap 'deploy/postgres.sh stop "$$dir"; rm -rf "$$dir"' EXIT; \
		pg=$$(deploy/postgres.sh start "$$dir" 55497); fi; \
	$(GO) run ./bench/loadgen --qrserver bin/qrserver --baseline bin/baseline --prism node_modules/.bin/prism \
		--postgres "$$pg" --replica-gomaxprocs $(REPLICA_GOMAXPROCS) --out $(BENCH_OUT)

## fuzz: each fuzz target for FUZZTIME (their seed corpora run in make test too): the CRN
## and API-version parsers, the token parser, and the whole request path in-process.
## Minimizing a new interesting input stops the fuzzing meanwhile, up to 60 s by default:
## FuzzVerifyToken for 40 s: 12.6k execs, none after the 6th second; with 5 s, 232k.
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 5s
FUZZ_TARGETS = FuzzParseCRN:./domain FuzzResolveAPIVersion:./domain FuzzVerifyToken:./server FuzzRequest:./server
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "$(GO) test -run '^$$' -fuzz '^$${t%%:*}$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $${t#*:}"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $${t#*:}; \
	done

## generate: regenerate gen/ from openapi.yaml (oapi-codegen, pinned in go.mod via tools.go)
generate:
	$(GO) generate ./...

## check-generate: regenerate and fail if anything generated differs from what is committed
check-generate: generate
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
		git status --porcelain -- gen; git --no-pager diff --stat -- gen; \
		echo "generated code is stale: run 'make generate' and commit"; exit 1; fi

build:
	$(GO) build ./...

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## test: gofmt, go vet and every test under the race detector; then, with
## QRAPI_TEST_POSTGRES set (a postgres:// URL, see deploy/postgres.sh), the server's and
## qrserver's tests again on PostgreSQL. The PostgreSQL-only tests skip without it, and
## fail under CI. Then the pytest example (examples/pytest) against the built qrserver,
## with Debian's python3-pytest and python3-requests, and IBM's Node SDK against it
## (examples/node, node --test).
PG_PACKAGES = ./server/ ./cmd/qrserver/
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	@if [ -n "$$QRAPI_TEST_POSTGRES" ]; then \
		echo "QRAPI_TEST_ENGINE=postgres $(GO) test -race -count=1 $(PG_PACKAGES)"; \
		QRAPI_TEST_ENGINE=postgres $(GO) test -race -count=1 $(PG_PACKAGES); fi
	$(MAKE) test-python test-node
	@if [ -z "$$QRAPI_TEST_POSTGRES" ]; then \
		echo "Skipped: the PostgreSQL tests (QRAPI_TEST_POSTGRES is not set; the rest ran on SQLite). To run them:"; \
		echo '  make test-postgres'; fi

## test-postgres: make test with a throwaway PostgreSQL (Debian's postgresql package;
## deploy/postgres.sh starts it on 127.0.0.1:55496 and stops it after)
test-postgres:
	@set -e; dir=$$(mktemp -d); trap 'deploy/postgres.sh stop "$$dir" >/dev/null; rm -rf "$$dir"' EXIT; \
	QRAPI_TEST_POSTGRES=$$(deploy/postgres.sh start "$$dir" 55496) $(MAKE) test

## test-node: IBM's Node SDK (@ibm-cloud/platform-services) against the built qrserver
test-node: node_modules/.package-lock.json
	@mkdir -p bin
	$(GO) build -o bin/qrserver ./cmd/qrserver
	QRSERVER_BIN=bin/qrserver node --test examples/node

## test-python: the pytest example against the built qrserver
test-python:
	@$(PYTHON) -c 'import pytest, requests' 2>/dev/null || { \
		echo "the pytest example needs Python's pytest and requests: apt-get install -y python3-pytest python3-requests"; exit 1; }
	@mkdir -p bin
	$(GO) build -o bin/qrserver ./cmd/qrserver
	QRSERVER_BIN=bin/qrserver $(PYTHON) -m pytest -q -p no:cacheprovider examples/pytest

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

## lint: Spectral with the IBM Cloud OpenAPI ruleset, on IBM's API and the IBM Cloud
## lookups; fails on any error
lint: node_modules/.package-lock.json
	npx --no-install spectral lint --fail-severity=error openapi.yaml openapi-platform.yaml
