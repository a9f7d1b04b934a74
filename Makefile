# POSIX make: works with OpenBSD make and GNU make.
# Override on the command line: make install PREFIX=/usr DESTDIR=/tmp/stage
PREFIX = /usr/local
DESTDIR =
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
GO = go
GOFLAGS =
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

all: bin/spfd bin/spfctl

bin/spfd: FORCE
	$(GO) build $(GOFLAGS) -o bin/spfd ./cmd/spfd

bin/spfctl: FORCE
	$(GO) build $(GOFLAGS) -o bin/spfctl ./cmd/spfctl

# Try spfd without root: file backend, state and socket under ./run,
# the common domains list, the system's resolvers. In another terminal:
#   bin/spfctl -s run/spfd.sock show domains
try: all
	mkdir -p run
	bin/spfd -d -f etc/spfd.conf -D statedir=`pwd`/run -D common=`pwd`/etc/common_domains.txt -s `pwd`/run/spfd.sock

# The checks every change must pass: formatting, vet, staticcheck, and the
# tests with the race detector.
test: lint
	$(GO) test -race -timeout 20m ./...

lint:
	@out=`gofmt -l .`; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

cross:
	CGO_ENABLED=0 GOOS=openbsd GOARCH=amd64 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=arm64 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=386 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=arm $(GO) build -o /dev/null ./...

install: all
	mkdir -p $(DESTDIR)$(SBINDIR)
	cp bin/spfd bin/spfctl $(DESTDIR)$(SBINDIR)/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/spfd $(DESTDIR)$(SBINDIR)/spfctl

clean:
	rm -rf bin run

FORCE:

.PHONY: all try test lint cross install uninstall clean FORCE
