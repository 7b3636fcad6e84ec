# shoal: the two commands the README promises, and a few more.
GO ?= go
# golangci-lint: the one on PATH, else the pinned build .ci/run installs into the cache.
GOLANGCI_LINT ?= $(or $(shell command -v golangci-lint 2>/dev/null),$(HOME)/.cache/shoal/bin/golangci-lint)

.PHONY: run test vet lint fuzz bench build

## run: build and run the server with its embedded storage on 127.0.0.1:4567
run:
	$(GO) run ./cmd/shoal server --addr 127.0.0.1:4567 --data-dir ./shoal-data

## build: build the shoal binary into ./bin
build:
	$(GO) build -o bin/shoal ./cmd/shoal

## test: everything CI runs: vet, lint, the race-enabled test suite, and a short run of every fuzz target
test: vet lint
	$(GO) test -race -count=1 -timeout 20m ./...
	./scripts/fuzz-smoke.sh 5s

vet:
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml (.ci/run installs the pinned version)
lint:
	@command -v $(GOLANGCI_LINT) >/dev/null || { echo "$(GOLANGCI_LINT) not found: .ci/run installs it; or GOBIN=$(HOME)/.cache/shoal/bin go install the golangci-lint version .ci/run pins"; exit 1; }
	$(GOLANGCI_LINT) run ./...

## fuzz: a longer run of every fuzz target (FUZZTIME=1m make fuzz)
fuzz:
	./scripts/fuzz-smoke.sh $${FUZZTIME:-1m}

## bench: Go benchmarks of the storage engine and server
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/... ./server/...
