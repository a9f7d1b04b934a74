package logwatch

import (
	"strings"
	"time"
)

// Error logs say what access logs say as 404 and 403, with the client in
// a field of its own. Only the messages below count; the path is the
// file the server looked for, read by the probe rule like a request path.

// apacheNotFound are Apache's messages for a missing file or script
// (2.2 and 2.4, with or without the AH code), and the one for a refusal.
var apacheNotFound = []string{"File does not exist: ", "script not found or unable to stat: ", "AH00128: File does not exist: ",
	"AH02811: script not found or unable to stat: "}

// parseHTTPDError reads an Apache or nginx error log line.
func parseHTTPDError(line string) (Event, bool) {
	if strings.HasPrefix(line, "[") {
		return parseApacheError(line)
	}
	return parseNginxError(line)
}

// parseApacheError reads "[time] [level] [pid N[:tid T]] [client A[:port]]
// message": the client is the first field after the server's own, before
// any text the client chose.
func parseApacheError(line string) (Event, bool) {
	rest := line
	var fields []string
	for len(fields) < 4 && strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "] ")
		if end < 0 {
			return Event{}, false
		}
		fields = append(fields, rest[1:end])
		rest = rest[end+2:]
		if strings.HasPrefix(fields[len(fields)-1], "client ") {
			break
		}
	}
	if len(fields) < 3 || !strings.HasPrefix(fields[len(fields)-1], "client ") {
		return Event{}, false
	}
	level := fields[1]
	if !strings.HasSuffix(level, "error") {
		return Event{}, false
	}
	for _, f := range fields[2 : len(fields)-1] {
		if !strings.HasPrefix(f, "pid ") {
			return Event{}, false
		}
	}
	client := strings.TrimPrefix(fields[len(fields)-1], "client ")
	// 2.4 (its level reads "module:level") always writes "A:port", an
	// IPv6 address without brackets (log.c, log_remote_address), so the
	// port must be cut first: "2001:db8::7:4242" read whole is another
	// address. 2.2 writes the address alone.
	if strings.Contains(level, ":") {
		i := strings.LastIndexByte(client, ':')
		if i < 0 {
			return Event{}, false
		}
		// Port 0 where Apache had no address structure.
		if port, ok := decimal(client[i+1:], 5); !ok || port > 65535 {
			return Event{}, false
		}
		client = client[:i]
	}
	addr, ok := parseAddr(client)
	if !ok {
		return Event{}, false
	}
	tm, _ := parseApacheTime(fields[0])
	e := Event{Kind: HTTPStatus, Time: tm, Addr: addr, Status: 404}
	for _, m := range apacheNotFound {
		if path, found := strings.CutPrefix(rest, m); found {
			e.Path = path
			return e, true
		}
	}
	// script '/path' not found or unable to stat
	if path, found := strings.CutPrefix(rest, "script '"); found {
		if path, found = strings.CutSuffix(path, "' not found or unable to stat"); found {
			e.Path = path
			return e, true
		}
	}
	// AH01630: client denied by server configuration: /path
	if path, found := strings.CutPrefix(rest, "AH01630: client denied by server configuration: "); found {
		e.Path, e.Status = path, 403
		return e, true
	}
	if strings.HasPrefix(rest, "AH01071: Got error 'Primary script unknown") {
		return e, true
	}
	return Event{}, false
}

func parseApacheTime(s string) (time.Time, bool) {
	for _, layout := range []string{"Mon Jan 02 15:04:05.000000 2006", "Mon Jan 02 15:04:05 2006"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseNginxError reads "YYYY/MM/DD HH:MM:SS [error] PID#TID: *CID
// open() "/path" failed (2: No such file or directory), client: A, server:
// S, request: "..."" and its "is not found" form. The path, from the
// request, comes before the client and may hold anything, ", client: ..."
// included, so the line must hold that clause exactly once.
func parseNginxError(line string) (Event, bool) {
	if len(line) < 20 || line[4] != '/' || line[7] != '/' || line[10] != ' ' || line[13] != ':' {
		return Event{}, false
	}
	tm, err := time.ParseInLocation("2006/01/02 15:04:05", line[:19], time.Local)
	if err != nil {
		return Event{}, false
	}
	rest, ok := strings.CutPrefix(line[19:], " [error] ")
	if !ok {
		return Event{}, false
	}
	if strings.Count(rest, ", client: ") != 1 {
		return Event{}, false
	}
	head, tail, _ := strings.Cut(rest, ", client: ")
	client, _, found := strings.Cut(tail, ", server: ")
	if !found {
		return Event{}, false
	}
	addr, ok := parseAddr(client)
	if !ok {
		return Event{}, false
	}
	// head: "PID#TID: *CID open() "/path" failed (2: No such file or
	// directory)" or "... "/path" is not found (2: No such file or
	// directory)".
	_, msg, found := strings.Cut(head, ": ")
	if !found {
		return Event{}, false
	}
	if _, m, ok := strings.Cut(msg, " "); ok && strings.HasPrefix(msg, "*") {
		msg = m
	}
	var path string
	switch {
	case strings.HasPrefix(msg, `open() "`) && strings.HasSuffix(msg, `" failed (2: No such file or directory)`):
		path = msg[len(`open() "`) : len(msg)-len(`" failed (2: No such file or directory)`)]
	case strings.HasPrefix(msg, `"`) && strings.HasSuffix(msg, `" is not found (2: No such file or directory)`):
		path = msg[1 : len(msg)-len(`" is not found (2: No such file or directory)`)]
	default:
		return Event{}, false
	}
	return Event{Kind: HTTPStatus, Time: tm, Addr: addr, Status: 404, Path: path}, true
}
