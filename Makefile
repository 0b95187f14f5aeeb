# The README's commands. `make test` is what CI runs.
GO ?= go
# `make install` puts the binary in $(DESTDIR)$(BINDIR) and the man pages
# in $(DESTDIR)$(MANDIR)/man1 (DESTDIR for staged installs by packagers).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
INSTALL ?= install

.PHONY: demo test race fuzz bench build man install

build:
	$(GO) build -o tapestream ./cmd/tapestream

# The man pages are generated from the commands (cobra's doc package) with
# a fixed date, or SOURCE_DATE_EPOCH when set.
man: build
	rm -rf man
	./tapestream gen-man man

install: build man
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 0755 tapestream $(DESTDIR)$(BINDIR)/tapestream
	$(INSTALL) -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1/

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
