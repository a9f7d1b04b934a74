// Command spfctl controls spfd and walks SPF records or scans logs offline.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spfd/spfd/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(cli.Env{Ctx: ctx, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}
