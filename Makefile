# shoal: the two commands the README promises, and a few more.
GO ?= go

.PHONY: run test vet fuzz bench build

## run: build and run the server with its embedded storage on 127.0.0.1:4567
run:
	$(GO) run ./cmd/shoal server --addr 127.0.0.1:4567 --data-dir ./shoal-data

## build: build the shoal binary into ./bin
build:
	$(GO) build -o bin/shoal ./cmd/shoal

## test: everything CI runs: vet, the race-enabled test suite, and a short run of every fuzz target
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...
	./scripts/fuzz-smoke.sh 5s

vet:
	$(GO) vet ./...

## fuzz: a longer run of every fuzz target (FUZZTIME=1m make fuzz)
fuzz:
	./scripts/fuzz-smoke.sh $${FUZZTIME:-1m}

## bench: Go benchmarks of the storage engine and server
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/... ./server/...
