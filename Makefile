# POSIX make: works with OpenBSD make and GNU make.
# Override on the command line: make install PREFIX=/usr DESTDIR=/tmp/stage
PREFIX = /usr/local
DESTDIR =
SBINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
EXAMPLEDIR = $(PREFIX)/share/examples/spfd
SYSCONFDIR = /etc
RCDIR = /etc/rc.d
SYSTEMDDIR = /lib/systemd/system
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
	bin/spfd -d -f etc/spfd.conf -D statedir=`pwd`/run -D common=`pwd`/etc/common_domains.txt \
		-D authlog=`pwd`/testdata/logs/authlog -D accesslog=`pwd`/testdata/logs/access.log \
		-D maillog=`pwd`/testdata/logs/maillog -s `pwd`/run/spfd.sock

# The checks every change must pass: formatting, vet, staticcheck, and the
# tests with the race detector.
test: lint
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@out=`gofmt -l .`; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	mandoc -Tlint -W warning man/spfd.8 man/spfd.conf.5 man/spfctl.8
	$(GO) vet ./...
	$(STATICCHECK) ./...

cross:
	CGO_ENABLED=0 GOOS=openbsd GOARCH=amd64 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=arm64 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=386 $(GO) build -o /dev/null ./...
	CGO_ENABLED=0 GOOS=openbsd GOARCH=arm $(GO) build -o /dev/null ./...

# Installs the binaries, the man pages and the examples; on OpenBSD the
# rc.d script, elsewhere the systemd unit; and /etc/spfd.conf and the
# common domains list unless they exist (an admin's files are never
# overwritten). OpenBSD keeps man pages in $(PREFIX)/man: MANDIR=...
install: all
	mkdir -p $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(SYSCONFDIR)/spfd
	cp bin/spfd bin/spfctl $(DESTDIR)$(SBINDIR)/
	chmod 755 $(DESTDIR)$(SBINDIR)/spfd $(DESTDIR)$(SBINDIR)/spfctl
	cp man/spfd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	cp man/spfd.8 man/spfctl.8 $(DESTDIR)$(MANDIR)/man8/
	cp etc/spfd.conf etc/common_domains.txt etc/pf.conf.example etc/nftables.conf.example \
		etc/spfd.service rc.d/spfd $(DESTDIR)$(EXAMPLEDIR)/
	[ -e $(DESTDIR)$(SYSCONFDIR)/spfd.conf ] || \
		sed 's|/usr/local|$(PREFIX)|g' etc/spfd.conf > $(DESTDIR)$(SYSCONFDIR)/spfd.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/spfd/common_domains.txt ] || \
		cp etc/common_domains.txt $(DESTDIR)$(SYSCONFDIR)/spfd/
	if [ "`uname`" = OpenBSD ]; then \
		mkdir -p $(DESTDIR)$(RCDIR) && \
		sed 's|/usr/local|$(PREFIX)|g' rc.d/spfd > $(DESTDIR)$(RCDIR)/spfd && \
		chmod 555 $(DESTDIR)$(RCDIR)/spfd; \
	else \
		mkdir -p $(DESTDIR)$(SYSTEMDDIR) && \
		sed 's|/usr/local|$(PREFIX)|g' etc/spfd.service > $(DESTDIR)$(SYSTEMDDIR)/spfd.service; \
	fi

# Leaves /etc/spfd.conf, the domains list and the state alone.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/spfd $(DESTDIR)$(SBINDIR)/spfctl \
		$(DESTDIR)$(MANDIR)/man5/spfd.conf.5 $(DESTDIR)$(MANDIR)/man8/spfd.8 \
		$(DESTDIR)$(MANDIR)/man8/spfctl.8 $(DESTDIR)$(RCDIR)/spfd \
		$(DESTDIR)$(SYSTEMDDIR)/spfd.service
	rm -rf $(DESTDIR)$(EXAMPLEDIR)

clean:
	rm -rf bin run

FORCE:

.PHONY: all try test lint cross install uninstall clean FORCE
