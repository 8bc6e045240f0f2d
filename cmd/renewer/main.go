// Command renewer keeps ACME certificates renewed, installed and deployed.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/renewer/renewer/internal/cli"
)

func main() { os.Exit(run()) }

// run is the whole program, with the dependencies this build links
// (wiring: providers.go or providers_lean.go, by build tag): SIGINT and
// SIGTERM end its context (the daemon then stops cleanly). The CLI tests run it too, in this test binary.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, wiring(), os.Args[1:], os.Stdout, os.Stderr)
}
