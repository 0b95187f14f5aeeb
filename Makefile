# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: demo test race fuzz bench

demo:
	$(GO) run ./cmd/tapestream demo

test:
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...
	$(GO) test -race -timeout 20m ./engine/... ./source/... ./pipeline/... ./sink/...
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 20s -fuzzminimizetime 10x ./tapeformat/

bench:
	$(GO) run ./bench
