module github.com/spfd/spfd

go 1.26.8

require (
	github.com/miekg/dns v1.1.73
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require (
	github.com/go-kit/log v0.2.1 // indirect
	github.com/go-logfmt/logfmt v0.5.1 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
