# The README's commands. `make test` is what CI runs.
GO ?= go

.PHONY: demo test race fuzz bench

demo:
	$(GO) run ./cmd/tapestream demo

test:
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...
	# -short: the damage matrices run every 8th case under the race detector
	$(GO) test -race -short -timeout 20m ./engine/... ./source/... ./storeapi/... ./server/... ./pipeline/... ./tapeformat/... ./media/... ./backup/... ./restore/... ./catalog/... ./scheduler/... ./internal/... ./pace/...
	# A count, not a duration: with -fuzztime 20s go1.26 can report the
	# deadline itself as a failure (golang/go#75804, fixed in go1.27).
	$(GO) test -run '^$$' -fuzz 'FuzzReader$$' -fuzztime 150000x -fuzzminimizetime 10x ./tapeformat/
	$(GO) test -run '^$$' -fuzz FuzzReaderEncrypted -fuzztime 50000x -fuzzminimizetime 10x ./tapeformat/
	$(GO) test -run '^$$' -fuzz FuzzDecrypt -fuzztime 50000x -fuzzminimizetime 10x ./tapeformat/agestream/

bench:
	$(GO) run ./bench
