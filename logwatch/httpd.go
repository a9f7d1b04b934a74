package logwatch

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// field is one field of an access log line: a bare word, a [bracketed]
// time or a "quoted" string (escapes undone).
type field struct {
	text   string
	quoted bool
}

// splitAccessLog splits a line into fields. Quoted strings may hold
// backslash escapes (Apache writes \", nginx \x22).
func splitAccessLog(line string) ([]field, bool) {
	var out []field
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ':
			i++
		case c == '[':
			j := strings.IndexByte(line[i:], ']')
			if j < 0 {
				return nil, false
			}
			out = append(out, field{text: line[i+1 : i+j]})
			i += j + 1
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(line) {
					return nil, false
				}
				if line[i] == '\\' && i+1 < len(line) {
					b.WriteByte(line[i+1])
					i += 2
					continue
				}
				if line[i] == '"' {
					i++
					break
				}
				b.WriteByte(line[i])
				i++
			}
			out = append(out, field{text: b.String(), quoted: true})
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			out = append(out, field{text: line[i : i+j]})
			i += j
		}
		if len(out) > 32 {
			return nil, false
		}
	}
	return out, true
}

// ParseHTTPD parses an access log line in the common or combined format of
// nginx and Apache ("client - user [time] ..."), Apache's vhost_combined
// and OpenBSD httpd's common, combined and forwarded styles, which put the
// server name first ("server client - user [time] ..."). The client is
// taken from its fixed field, before any field a client controls; a line
// that fits neither shape yields nothing.
//
// What follows the client is the client's text, and loggers treat it
// differently: nginx and Apache escape quotes, OpenBSD httpd leaves them
// in the query, the user agent and X-Forwarded-For (which it writes
// unquoted), and a basic-auth user may hold spaces. So the user runs to
// the first well-formed [time], the request to the first `" NNN size`,
// and X-Forwarded-For is read from the end of the line, where the proxy
// appended the address it saw.
func ParseHTTPD(line string) (Event, bool) {
	if len(line) > MaxLine {
		return Event{}, false
	}
	client, tm, rest, serverFirst, ok := splitHead(line)
	if !ok {
		return parseHTTPDError(line)
	}
	var request, statusText, size, forwarded string
	if serverFirst {
		request, statusText, size, forwarded, ok = splitTailRaw(rest)
	} else {
		request, statusText, size, forwarded, ok = splitTailQuoted(rest)
	}
	if !ok {
		return Event{}, false
	}
	status, err := strconv.Atoi(statusText)
	if err != nil || status < 100 || status > 599 || len(statusText) != 3 {
		return Event{}, false
	}
	if size != "-" {
		if _, err := strconv.ParseUint(size, 10, 64); err != nil {
			return Event{}, false
		}
	}
	e := Event{Kind: HTTPRequest, Time: tm, Addr: client, Status: status, Forwarded: forwarded}
	if status == 403 || status == 404 {
		e.Kind = HTTPStatus
	}
	// The request line: METHOD PATH [PROTOCOL] (no protocol: HTTP/0.9);
	// garbage (TLS to port 80, scanners) keeps an empty path.
	if parts := strings.Split(request, " "); (len(parts) == 3 || len(parts) == 2) && isMethod(parts[0]) {
		e.Path = parts[1]
	}
	return e, true
}

// isMethod reports whether m looks like an HTTP method token.
func isMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, c := range []byte(m) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// splitHead reads "client - user [time] " or "server client - user
// [time] ", and returns the rest. The user (a basic-auth name or a TLS
// subject, the client's text) runs to the first well-formed [time].
func splitHead(line string) (client netip.Addr, tm time.Time, rest string, serverFirst, ok bool) {
	first, after, found := strings.Cut(line, " ")
	if !found {
		return netip.Addr{}, time.Time{}, "", false, false
	}
	if tail, isDash := strings.CutPrefix(after, "- "); isDash {
		client, ok = parseAddr(first)
		after = tail
	} else {
		var second string
		if second, after, found = strings.Cut(after, " "); !found || strings.ContainsAny(first, `"[`) {
			return netip.Addr{}, time.Time{}, "", false, false
		}
		client, ok = parseAddr(second)
		if after, found = strings.CutPrefix(after, "- "); !found {
			ok = false
		}
		serverFirst = true
	}
	if !ok {
		return netip.Addr{}, time.Time{}, "", false, false
	}
	// " [02/Jan/2006:15:04:05 -0700] " after the user; "- [" when none.
	for i := 0; ; {
		j := strings.Index(after[i:], "[")
		if j < 0 {
			return netip.Addr{}, time.Time{}, "", false, false
		}
		at := i + j
		if (at == 0 || after[at-1] == ' ') && len(after) >= at+29 && after[at+27] == ']' && after[at+28] == ' ' {
			if t, err := time.Parse("02/Jan/2006:15:04:05 -0700", after[at+1:at+27]); err == nil && at > 0 {
				return client, t, after[at+29:], serverFirst, true
			}
		}
		i = at + 1
	}
}

// splitTailQuoted reads `"request" status size ["referer" "agent"
// ["x-forwarded-for" ...]]` as nginx and Apache write it, quotes escaped.
func splitTailQuoted(rest string) (request, status, size, forwarded string, ok bool) {
	f, ok := splitAccessLog(rest)
	if !ok || len(f) < 3 || !f[0].quoted || f[1].quoted || f[2].quoted {
		return "", "", "", "", false
	}
	// nginx formats that log X-Forwarded-For put it after the agent.
	if len(f) >= 6 {
		forwarded = f[5].text
	}
	return f[0].text, f[1].text, f[2].text, forwarded, true
}

// splitTailRaw reads `"request" status size ["referer" "agent" [xff
// xfp]]` as OpenBSD httpd writes it: the query, the agent and
// X-Forwarded-For may hold raw quotes, and X-Forwarded-For is unquoted.
// The request ends at the first `" NNN size` (a quote the client put
// before it can only make the client itself uncounted); the forwarded
// addresses are what stands between the last quote and the port.
func splitTailRaw(rest string) (request, status, size, forwarded string, ok bool) {
	if !strings.HasPrefix(rest, `"`) {
		return "", "", "", "", false
	}
	for i := 1; ; {
		j := strings.Index(rest[i:], `" `)
		if j < 0 {
			return "", "", "", "", false
		}
		end := i + j
		i = end + 1
		st, tail, found := strings.Cut(rest[end+2:], " ")
		if !found {
			st, tail = rest[end+2:], ""
		}
		sz, tail, _ := strings.Cut(tail, " ")
		if len(st) != 3 || !allDigits(st) || (sz != "-" && !allDigits(sz)) {
			continue
		}
		request, status, size = rest[1:end], st, sz
		if tail == "" {
			return request, status, size, "", true // common
		}
		// "referer" "agent" [xff xfp]
		q := strings.LastIndexByte(tail, '"')
		if !strings.HasPrefix(tail, `"`) || q == 0 {
			return "", "", "", "", false
		}
		after := strings.TrimSpace(tail[q+1:])
		if after != "" {
			xff, xfp, found := cutLast(after, " ")
			if !found || (xfp != "-" && !allDigits(xfp)) {
				return "", "", "", "", false
			}
			forwarded = xff
		}
		return request, status, size, forwarded, true
	}
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
