// Command demo is `make demo`: it starts a local Pebble CA, then runs the
// renewer binary the way a user would — validate, renew, status, a forced
// renewal — against examples/demo/renewer.hcl, and stops the CA on the way
// out, also on failure or Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/renewer/renewer/internal/testca"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := filepath.Abs(".demo")
	if err != nil {
		return err
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	bin := filepath.Join(work, "renewer")
	step("building renewer")
	if err := runCmd(ctx, nil, "go", "build", "-o", bin, "./cmd/renewer"); err != nil {
		return err
	}

	step("starting Pebble and pebble-challtestsrv on loopback (go tool, pinned in go.mod)")
	ca, err := testca.Start(ctx, testca.Options{Dir: filepath.Join(work, "ca")})
	if err != nil {
		return err
	}
	defer func() {
		ca.Stop()
		fmt.Println("\n==> stopped the CA; everything the demo wrote is in", work)
	}()
	fmt.Printf("    ACME directory %s (log in %s)\n", ca.Directory, filepath.Join(work, "ca", "ca.log"))

	env := []string{
		"RENEWER_CONFIG=examples/demo/renewer.hcl",
		"DEMO_STORAGE=" + filepath.Join(work, "storage"),
		"DEMO_ACME_DIRECTORY=" + ca.Directory,
		"DEMO_CA_BUNDLE=" + ca.CABundle,
		"DEMO_HTTP_LISTEN=127.0.0.1:" + strconv.Itoa(ca.HTTPPort),
	}
	renewer := func(args ...string) error {
		step("renewer " + strings.Join(args, " "))
		return runCmd(ctx, env, bin, args...)
	}
	for _, args := range [][]string{
		{"validate"},
		{"plan"},
		{"renew"},
		{"status"},
		{"renew"},
		{"renew", "--force", "www"},
		{"status"},
	} {
		if err := renewer(args...); err != nil {
			return err
		}
	}
	step("on disk")
	return runCmd(ctx, nil, "ls", "-l", filepath.Join(work, "storage", "live"), filepath.Join(work, "storage", "certs", "www"))
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func runCmd(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}
