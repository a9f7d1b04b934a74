// Package config parses spfd.conf, an OpenBSD-style configuration file in
// the manner of bgpd.conf and smtpd.conf: one statement a line, '#'
// comments, macros, include files, quoted strings and { } lists.
package config

import (
	"fmt"
	"strings"
)

type tokenKind int

const (
	tokWord tokenKind = iota
	tokString
	tokOpen    // {
	tokClose   // }
	tokEquals  // =
	tokNewline // end of a statement
	tokEOF
)

type token struct {
	kind tokenKind
	text string
	file string
	line int
}

func (t token) String() string {
	switch t.kind {
	case tokString:
		return fmt.Sprintf("%q", t.text)
	case tokNewline:
		return "end of line"
	case tokEOF:
		return "end of file"
	}
	return fmt.Sprintf("%q", t.text)
}

// maxTokenLength bounds words and strings.
const maxTokenLength = 4096

// lex splits src into tokens. Newlines inside { } do not end a statement.
func lex(file, src string) ([]token, error) {
	var toks []token
	line := 1
	depth, openLine := 0, 0
	emit := func(k tokenKind, text string) { toks = append(toks, token{k, text, file, line}) }
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			if depth == 0 {
				emit(tokNewline, "")
			}
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			line++ // line continuation
			i += 2
		case c == '{':
			if depth == 0 {
				openLine = line
			}
			depth++
			emit(tokOpen, "{")
			i++
		case c == '}':
			if depth == 0 {
				return nil, fmt.Errorf("%s:%d: unbalanced }", file, line)
			}
			depth--
			emit(tokClose, "}")
			i++
		case c == '=':
			emit(tokEquals, "=")
			i++
		case c == '"':
			var b strings.Builder
			start := line
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("%s:%d: unterminated string", file, start)
				}
				c := src[i]
				if c == '"' {
					i++
					break
				}
				if c == '\n' {
					return nil, fmt.Errorf("%s:%d: newline in string", file, line)
				}
				if c == '\\' && i+1 < len(src) && (src[i+1] == '"' || src[i+1] == '\\') {
					i++
					c = src[i]
				}
				if c < 0x20 && c != '\t' {
					return nil, fmt.Errorf("%s:%d: control character in string", file, line)
				}
				b.WriteByte(c)
				i++
				if b.Len() > maxTokenLength {
					return nil, fmt.Errorf("%s:%d: string longer than %d bytes", file, line, maxTokenLength)
				}
			}
			toks = append(toks, token{tokString, b.String(), file, start})
		default:
			start := i
			for i < len(src) && !strings.ContainsRune(" \t\r\n#{}=\"", rune(src[i])) {
				if src[i] < 0x20 || src[i] == 0x7f {
					return nil, fmt.Errorf("%s:%d: control character", file, line)
				}
				i++
			}
			if i-start > maxTokenLength {
				return nil, fmt.Errorf("%s:%d: word longer than %d bytes", file, line, maxTokenLength)
			}
			emit(tokWord, src[start:i])
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%s:%d: missing }: the { opened here is never closed", file, openLine)
	}
	emit(tokNewline, "")
	emit(tokEOF, "")
	return toks, nil
}
