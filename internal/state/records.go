package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// The files beside the snapshot (offenders, series) share its framing: a
// magic first line, one record a line, and an END line with the number
// of records and the CRC-32 of everything before it, so a torn or
// damaged file is told from a whole one.

// writeRecords frames the records each emits (lines without their
// newline).
func writeRecords(magic string, each func(emit func(line []byte))) []byte {
	var b bytes.Buffer
	crc := crc32.NewIEEE()
	w := io.MultiWriter(&b, crc)
	io.WriteString(w, magic+"\n")
	n := 0
	each(func(line []byte) {
		w.Write(line)
		w.Write([]byte{'\n'})
		n++
	})
	fmt.Fprintf(&b, "END %d %08x\n", n, crc.Sum32())
	return b.Bytes()
}

// readRecords checks the framing and hands each record to f.
func readRecords(r io.Reader, magic string, f func(text string) error) error {
	crc := crc32.NewIEEE()
	sc := bufio.NewScanner(r)
	n, lineNo := 0, 0
	for sc.Scan() {
		lineNo++
		text := sc.Text()
		if lineNo == 1 {
			if text != magic {
				return fmt.Errorf("not a %q file", magic)
			}
			crc.Write([]byte(text + "\n"))
			continue
		}
		if rest, ok := strings.CutPrefix(text, "END "); ok {
			var records int
			var sum uint32
			if _, err := fmt.Sscanf(rest, "%d %08x", &records, &sum); err != nil || records != n || sum != crc.Sum32() {
				return fmt.Errorf("line %d: damaged (END %q, read %d records)", lineNo, rest, n)
			}
			return nil
		}
		crc.Write([]byte(text + "\n"))
		if err := f(text); err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("truncated: no END line")
}
