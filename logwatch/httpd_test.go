package logwatch

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

func TestParseHTTPD(t *testing.T) {
	ts := time.Date(2026, 11, 27, 20, 6, 52, 0, time.FixedZone("", 0))
	tests := []struct {
		name string
		line string
		want Event
	}{
		{"nginx combined 404", `203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET /wp-admin/setup-config.php HTTP/1.1" 404 153 "-" "Mozilla/5.0 (zgrab)"`,
			Event{Kind: HTTPStatus, Addr: addr("203.0.113.5"), Status: 404, Path: "/wp-admin/setup-config.php"}},
		{"apache common 403", `2001:db8::5 - - [27/Nov/2026:20:06:52 +0000] "POST /xmlrpc.php HTTP/1.0" 403 -`,
			Event{Kind: HTTPStatus, Addr: addr("2001:db8::5"), Status: 403, Path: "/xmlrpc.php"}},
		{"apache combined 200 with user and escaped quote", `192.0.2.9 - bob [27/Nov/2026:20:06:52 +0000] "GET /a\"b HTTP/1.1" 200 512 "http://x/" "curl/8"`,
			Event{Kind: HTTPRequest, Addr: addr("192.0.2.9"), Status: 200, Path: `/a"b`}},
		{"OpenBSD httpd common", `www.example.org 203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET /phpMyAdmin/index.php HTTP/1.1" 404 0`,
			Event{Kind: HTTPStatus, Addr: addr("203.0.113.5"), Status: 404, Path: "/phpMyAdmin/index.php"}},
		{"OpenBSD httpd combined", `www.example.org 203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET /tmUnblock.cgi HTTP/1.1" 404 0 "" "Mozilla/4.0"`,
			Event{Kind: HTTPStatus, Addr: addr("203.0.113.5"), Status: 404, Path: "/tmUnblock.cgi"}},
		{"OpenBSD httpd forwarded", `www.example.org 127.0.0.1 - - [27/Nov/2026:20:06:52 +0000] "GET /mysql-admin/ HTTP/1.1" 404 0 "" "UA" 203.0.113.77 443`,
			Event{Kind: HTTPStatus, Addr: addr("127.0.0.1"), Status: 404, Path: "/mysql-admin/", Forwarded: "203.0.113.77"}},
		{"server name that is an address", `192.0.2.1 203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0`,
			Event{Kind: HTTPStatus, Addr: addr("203.0.113.5"), Status: 404, Path: "/"}},
		{"apache vhost_combined", `www.example.org:443 203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET /.env HTTP/1.1" 404 196 "-" "x"`,
			Event{Kind: HTTPStatus, Addr: addr("203.0.113.5"), Status: 404, Path: "/.env"}},
		{"TLS garbage to port 80", `203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "\x16\x03\x01\x00\xfc\x01" 400 157 "-" "-"`,
			Event{Kind: HTTPRequest, Addr: addr("203.0.113.5"), Status: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseHTTPD(tt.line)
			if !ok {
				t.Fatalf("no event from %s", tt.line)
			}
			if !got.Time.Equal(ts) {
				t.Errorf("time %v", got.Time)
			}
			got.Time = time.Time{}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseHTTPDRejects(t *testing.T) {
	for _, line := range []string{
		``,
		`not a log line at all`,
		// A forged address in the request, user or agent is never the client.
		`- - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0 "203.0.113.5" "x"`,
		`host - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0`,
		`203.0.113.5 x - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0`,
		`203.0.113.5 - - [yesterday] "GET / HTTP/1.1" 404 0`,
		`203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 4040 0`,
		`203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 lots`,
		`203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1 404 0`,
		`"203.0.113.5" - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0`,
		`fe80::1%em0 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0`,
	} {
		if e, ok := ParseHTTPD(line); ok {
			t.Errorf("%q gave %+v", line, e)
		}
	}
}

func FuzzParseHTTPD(f *testing.F) {
	f.Add(`203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET /wp-admin/ HTTP/1.1" 404 153 "-" "UA"`)
	f.Add(`www.example.org 203.0.113.5 - - [27/Nov/2026:20:06:52 +0000] "GET / HTTP/1.1" 404 0 "" "UA" 192.0.2.1 443`)
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := ParseHTTPD(line)
		if !ok {
			return
		}
		fields, _ := splitAccessLog(line)
		// The client is the first or the second field, bare.
		if a, ok := parseAddr(fields[0].text); !(ok && a == e.Addr && !fields[0].quoted) {
			if a, ok := parseAddr(fields[1].text); !(ok && a == e.Addr && !fields[1].quoted) {
				t.Fatalf("%q: client %v not in the first two fields", line, e.Addr)
			}
		}
	})
}

// Each crafted line names the real client (198.51.100.7, connecting
// through the trusted proxy 127.0.0.1 where there is one) or nobody,
// never the victim 203.0.113.50.
func TestHTTPDFramingVectors(t *testing.T) {
	trusted := func(a netip.Addr) bool { return a == addr("127.0.0.1") }
	const tm = "[27/Nov/2026:20:06:52 +0000]"
	tests := []struct {
		name, line string
		want       string // the client charged, "" for nobody
		status     int
	}{
		{"OpenBSD forwarded: quotes in the user agent", `www.example.org 127.0.0.1 - - ` + tm + ` "GET /wp-admin HTTP/1.1" 404 0 "" "x" "203.0.113.50" 198.51.100.7 -`, "198.51.100.7", 404},
		{"OpenBSD forwarded: a forged X-Forwarded-For with a space", `www.example.org 127.0.0.1 - - ` + tm + ` "GET /wp-admin HTTP/1.1" 404 0 "" "UA" 203.0.113.50 x, 198.51.100.7 443`, "198.51.100.7", 404},
		{"OpenBSD forwarded: a quote in X-Forwarded-For", `www.example.org 127.0.0.1 - - ` + tm + ` "GET / HTTP/1.1" 404 0 "" "UA" x" 203.0.113.50, 198.51.100.7 443`, "198.51.100.7", 404},
		{"OpenBSD forwarded: agent ends like the tail", `www.example.org 127.0.0.1 - - ` + tm + ` "GET / HTTP/1.1" 404 0 "" "UA" 203.0.113.50 443" 198.51.100.7 443`, "198.51.100.7", 404},
		{"OpenBSD: a raw quote in the query does not hide a 404", `www.example.org 198.51.100.7 - - ` + tm + ` "GET /x?a" 200 "b HTTP/1.1" 404 0 "" "UA"`, "198.51.100.7", 404},
		{"OpenBSD: a quote and an address in the query", `www.example.org 198.51.100.7 - - ` + tm + ` "GET /x?" 203.0.113.50 "y HTTP/1.1" 404 0`, "198.51.100.7", 404},
		{"nginx: basic-auth user with a space", `198.51.100.7 - bob smith ` + tm + ` "GET /wp-admin HTTP/1.1" 401 0 "-" "x"`, "198.51.100.7", 401},
		{"nginx: user holding a fake head", `198.51.100.7 - x 203.0.113.50 - - ` + tm + ` "GET / HTTP/1.1" 404 0 "-" "x"`, "198.51.100.7", 404},
		{"nginx: HTTP/0.9 request line", `198.51.100.7 - - ` + tm + ` "GET /wp-login.php" 404 0 "-" "-"`, "198.51.100.7", 404},
		{"direct client naming a victim in X-Forwarded-For", `www.example.org 198.51.100.7 - - ` + tm + ` "GET / HTTP/1.1" 404 0 "" "UA" 203.0.113.50 -`, "198.51.100.7", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ParseHTTPD(tt.line)
			got := ""
			if ok {
				if c, cok := ClientBehind(&e, trusted); cok {
					got = c.String()
				}
			}
			if got != tt.want {
				t.Fatalf("charged %q, want %q (event %+v)", got, tt.want, e)
			}
			if ok && e.Status != tt.status {
				t.Errorf("status %d, want %d", e.Status, tt.status)
			}
		})
	}
	// HTTP/0.9 requests reach the probe rule too.
	if e, _ := ParseHTTPD(`198.51.100.7 - - ` + tm + ` "GET /wp-login.php" 404 0 "-" "-"`); e.Path != "/wp-login.php" {
		t.Errorf("HTTP/0.9 path %q", e.Path)
	}
}

// A line built from OpenBSD httpd's forwarded template, with every field
// the client controls random and holding the victim's address, never
// charges the victim when the proxy is trusted.
func FuzzHTTPDNeverChargesTheVictim(f *testing.F) {
	f.Add("/x", "a=1", "bob", "Mozilla", "203.0.113.50", "443")
	f.Add(`/x`, `a" 200 0 "`, "-", `x" "203.0.113.50`, "203.0.113.50 x", "22")
	f.Add("/", "", "a b", `" 203.0.113.50 -`, `x" 203.0.113.50`, "-")
	victim := addr("203.0.113.50")
	trusted := func(a netip.Addr) bool { return a == addr("127.0.0.1") }
	f.Fuzz(func(t *testing.T, path, query, user, agent, xff, xfp string) {
		for _, s := range []string{path, query, user, agent, xff, xfp} {
			if strings.ContainsAny(s, "\n\r") {
				return
			}
		}
		// The path is url-encoded by httpd; the rest is written as sent.
		line := fmt.Sprintf(`www.example.org 127.0.0.1 - %s [27/Nov/2026:20:06:52 +0000] "GET %s?%s HTTP/1.1" 404 0 "" "%s" %s, 198.51.100.7 %s`,
			user, url.PathEscape(path), query, agent, xff, xfp)
		if e, ok := ParseHTTPD(line); ok {
			if c, ok := ClientBehind(&e, trusted); ok && c == victim {
				t.Fatalf("%q charges the victim", line)
			}
		}
		// nginx's error log writes the path (decoded) before the client
		// and the request line after it.
		errLine := fmt.Sprintf(`2026/11/27 20:06:52 [error] 1#0: *1 open() "/var/www%s" failed (2: No such file or directory), client: 198.51.100.7, server: %s, request: "GET %s?%s HTTP/1.1", host: "%s"`,
			path, user, path, query, agent)
		if e, ok := ParseHTTPD(errLine); ok && e.Addr == victim {
			t.Fatalf("%q charges the victim", errLine)
		}
		// Apache's error log: the client comes first, then the path.
		apLine := fmt.Sprintf(`[Fri Nov 27 20:06:52.000000 2026] [core:error] [pid 1:tid 2] [client 198.51.100.7:4242] AH00128: File does not exist: /var/www%s%s`, path, agent)
		if e, ok := ParseHTTPD(apLine); ok && e.Addr == victim {
			t.Fatalf("%q charges the victim", apLine)
		}
	})
}

// Error logs count as 404s and 403s, with the probe rule on the path
// the server looked for; the client comes from its own field, and a
// second client clause (the path is the client's) names nobody.
func TestParseHTTPDErrorLogs(t *testing.T) {
	tests := []struct {
		name, line string
		want       string // client, "" for nobody
		status     int
		path       string
	}{
		{"Apache 2.2 file does not exist", `[Mon Dec 23 09:49:10 2013] [error] [client 198.51.100.7] File does not exist: /var/www/pma`, "198.51.100.7", 404, "/var/www/pma"},
		{"Apache 2.4 script not found", `[Tue Aug 11 08:56:17.580412 2020] [cgi:error] [pid 27550:tid 140110750279424] [client 198.51.100.7:18071] AH02811: script not found or unable to stat: /usr/lib/cgi-bin/kerby`, "198.51.100.7", 404, "/usr/lib/cgi-bin/kerby"},
		{"Apache script '...' form", `[Mon Dec 23 07:49:01.981912 2013] [:error] [pid 3790] [client 198.51.100.7:46301] script '/var/www/timthumb.php' not found or unable to stat`, "198.51.100.7", 404, "/var/www/timthumb.php"},
		{"Apache client denied", `[Tue Aug 11 08:56:17.580412 2020] [authz_core:error] [pid 1:tid 2] [client 198.51.100.7:1] AH01630: client denied by server configuration: /var/www/.git`, "198.51.100.7", 403, "/var/www/.git"},
		{"Apache: a client field in the path", `[Mon Dec 23 09:49:10 2013] [error] [client 198.51.100.7] File does not exist: /var/www/x [client 203.0.113.50]`, "198.51.100.7", 404, "/var/www/x [client 203.0.113.50]"},
		{"Apache 2.4 IPv6 client", `[Tue Aug 11 08:56:17.580412 2020] [core:error] [pid 1:tid 2] [client 2001:db8::7:4242] AH00128: File does not exist: /var/www/pma`, "2001:db8::7", 404, "/var/www/pma"},
		{"Apache 2.4 IPv6 client, port 0", `[Tue Aug 11 08:56:17.580412 2020] [core:error] [pid 1:tid 2] [client 2001:db8::7:0] AH00128: File does not exist: /var/www/pma`, "2001:db8::7", 404, "/var/www/pma"},
		{"Apache 2.4 without a port", `[Tue Aug 11 08:56:17.580412 2020] [core:error] [pid 1:tid 2] [client 198.51.100.7] AH00128: File does not exist: /var/www/pma`, "", 0, ""},
		{"Apache 2.2 IPv6 client", `[Mon Dec 23 09:49:10 2013] [error] [client 2001:db8::7] File does not exist: /var/www/pma`, "2001:db8::7", 404, "/var/www/pma"},
		{"Apache: other messages", `[Mon Dec 23 09:49:10 2013] [error] [client 198.51.100.7] Invalid URI in request GET /x`, "", 0, ""},
		{"nginx open() failed", `2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/var/www/site/cgi-bin/php4" failed (2: No such file or directory), client: 198.51.100.7, server: localhost, request: "GET /cgi-bin/php4 HTTP/1.1", host: "1.2.3.4"`, "198.51.100.7", 404, "/var/www/site/cgi-bin/php4"},
		{"nginx is not found", `2015/01/21 15:02:27 [error] 2833#0: *16813 "/var/www/site/roundcube/" is not found (2: No such file or directory), client: 198.51.100.7, server: localhost, request: "GET /roundcube/ HTTP/1.1", host: "1.2.3.4"`, "198.51.100.7", 404, "/var/www/site/roundcube/"},
		{"nginx: a forged client clause in the path", `2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/var/www/x" failed (2: No such file or directory), client: 203.0.113.50, server: y" failed (2: No such file or directory), client: 198.51.100.7, server: localhost, request: "GET /x HTTP/1.1", host: "1.2.3.4"`, "", 0, ""},
		{"nginx: a forged client clause in the request", `2015/01/21 10:56:10 [error] 2833#0: *16336 open() "/var/www/x" failed (2: No such file or directory), client: 198.51.100.7, server: localhost, request: "GET /x, client: 203.0.113.50, server: y HTTP/1.1", host: "1.2.3.4"`, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := ParseHTTPD(tt.line)
			if tt.want == "" {
				if ok {
					t.Fatalf("event %+v", e)
				}
				return
			}
			if !ok || e.Addr != addr(tt.want) || e.Status != tt.status || e.Path != tt.path || e.Time.IsZero() {
				t.Fatalf("got %+v (ok %v)", e, ok)
			}
		})
	}
}

// A 400 (garbage sent to a plain HTTP port, an empty request line) is a
// probe: it strikes at once under the default probe threshold.
func TestBadRequestIsAProbe(t *testing.T) {
	p := NewProcessor(config.DefaultLogSource("httpd"), nil)
	var bans []Outcome
	for _, o := range p.Line(`198.51.100.7 - - [27/Nov/2026:20:06:52 +0000] "\x16\x03\x01\x00\xfc\x01" 400 157 "-" "-"`, testNow) {
		if o.Action == Ban {
			bans = append(bans, o)
		}
	}
	if len(bans) != 1 || bans[0].Rule != "httpd-probe" || bans[0].Addr != addr("198.51.100.7") {
		t.Fatalf("bans %+v", bans)
	}
}
