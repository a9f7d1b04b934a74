module github.com/spfd/spfd

go 1.26.8

require (
	github.com/miekg/dns v1.1.73
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require (
	github.com/fsnotify/fsnotify v1.6.0 // indirect
	github.com/go-kit/log v0.2.1 // indirect
	github.com/go-logfmt/logfmt v0.5.1 // indirect
	github.com/nxadm/tail v1.4.11 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	gopkg.in/tomb.v1 v1.0.0-20141024135613-dd632973f1e7 // indirect
)
