// Command sshgen writes a synthetic sshd log (see internal/sshlog) to
// standard output.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/spfd/spfd/internal/sshlog"
)

func main() {
	n := flag.Int("n", 1_000_000, "lines")
	flag.Parse()
	if err := sshlog.Write(os.Stdout, *n); err != nil {
		log.Fatal(err)
	}
}
