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
// taken from its fixed field, before any field a client controls; the
// format is told apart by the fields around it, and a line that fits
// neither exactly yields nothing.
func ParseHTTPD(line string) (Event, bool) {
	if len(line) > MaxLine {
		return Event{}, false
	}
	f, ok := splitAccessLog(line)
	if !ok || len(f) < 7 {
		return Event{}, false
	}
	var client netip.Addr
	var rest []field
	switch {
	case isAddr(f[0]) && f[1].text == "-" && !f[1].quoted && isTime(f[3]):
		client, _ = parseAddr(f[0].text)
		rest = f[4:]
	case len(f) >= 8 && !f[0].quoted && isAddr(f[1]) && f[2].text == "-" && !f[2].quoted && isTime(f[4]):
		client, _ = parseAddr(f[1].text)
		rest = f[5:]
	default:
		return Event{}, false
	}
	tm, err := time.Parse("02/Jan/2006:15:04:05 -0700", f[len(f)-len(rest)-1].text)
	if err != nil {
		return Event{}, false
	}
	// "request" status size ["referer" "agent" [forwarded...]]
	if len(rest) < 3 || !rest[0].quoted || rest[1].quoted || rest[2].quoted {
		return Event{}, false
	}
	status, err := strconv.Atoi(rest[1].text)
	if err != nil || status < 100 || status > 599 || len(rest[1].text) != 3 {
		return Event{}, false
	}
	if rest[2].text != "-" {
		if _, err := strconv.ParseUint(rest[2].text, 10, 64); err != nil {
			return Event{}, false
		}
	}
	e := Event{Kind: HTTPRequest, Time: tm, Addr: client, Status: status}
	if status == 403 || status == 404 {
		e.Kind = HTTPStatus
	}
	// The request line: METHOD PATH PROTOCOL; garbage (TLS to port 80,
	// scanners) keeps an empty path.
	if parts := strings.Split(rest[0].text, " "); len(parts) == 3 {
		e.Path = parts[1]
	}
	// OpenBSD's forwarded style and many nginx formats end with
	// X-Forwarded-For; it is kept, and used only for trusted proxies.
	if len(rest) >= 6 {
		e.Forwarded = rest[5].text
	}
	return e, true
}

func isAddr(f field) bool {
	if f.quoted {
		return false
	}
	_, ok := parseAddr(f.text)
	return ok
}

func isTime(f field) bool {
	return !f.quoted && len(f.text) == 26 && f.text[2] == '/' && f.text[20] == ' '
}
