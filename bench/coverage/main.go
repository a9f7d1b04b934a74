// Command coverage reads log lines on standard input and prints, for each
// line scanned alone (no context), the address spfd would strike, or "-":
// the spfd side of bench/coverage.sh's comparison with fail2ban-regex.
//
//	go run ./bench/coverage -t sshd|httpd < lines
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/logwatch"
)

func main() {
	typ := flag.String("t", "sshd", "log family: sshd or httpd")
	flag.Parse()
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for sc.Scan() {
		// A fresh processor per line, threshold 1: does this line alone
		// strike anyone, and whom?
		src := config.DefaultLogSource(*typ)
		src.Threshold = 1
		p := logwatch.NewProcessor(src, nil)
		p.UseLineTime = true
		struck := "-"
		for _, o := range p.Line(sc.Text(), now) {
			if o.Action == logwatch.Ban {
				struck = o.Addr.String()
				break
			}
		}
		fmt.Fprintln(out, struck)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "coverage:", err)
		os.Exit(1)
	}
}
