package spf

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spfd/spfd/internal/syntax"
)

// maxDomainLine bounds one line of a domain list.
const maxDomainLine = 4096

// ReadDomains reads a domain list: one domain per line, '#' starts a
// comment, words after the first are ignored, and each domain is returned
// once, normalised, in the order first seen. Invalid names are reported
// with their line numbers and skipped.
func ReadDomains(r io.Reader) ([]string, []error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxDomainLine)
	seen := make(map[string]bool)
	var domains []string
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		d := syntax.NormalizeDomain(fields[0])
		if err := syntax.ValidateDomain(d); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		if !seen[d] {
			seen[d] = true
			domains = append(domains, d)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading domain list: %w", err))
	}
	return domains, errs
}
