package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/status"
)

const fleetArgs = "forget [--force] NODE"

// nodeForgetter is what `renewer fleet forget` needs of the fleet backend
// (internal/fleet's Backend, gone.go).
type nodeForgetter interface {
	LastReport(ctx context.Context, node string) (time.Time, []string, error)
	Forget(ctx context.Context, node string) ([]string, error)
}

// cmdFleet is `renewer fleet forget [--force] NODE`: remove the reports of
// a node that left the fleet, so status stops showing it. A node that
// reported within node_gone_after is alive: refused without --force.
func cmdFleet(ctx context.Context, e *env, g *globals, args []string) int {
	if len(args) == 0 || args[0] != "forget" {
		fmt.Fprintf(e.stderr, "renewer fleet: want a subcommand\nUsage: renewer fleet %s\n", fleetArgs)
		return ExitUsage
	}
	fs := flags(e, g, "fleet forget", "[--force] NODE")
	force := fs.Bool("force", false, "forget the node even though it reported within node_gone_after (it reports again if it runs)")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() != 1 || fs.Arg(0) == "" {
		fmt.Fprintln(e.stderr, "renewer fleet forget: name exactly one node")
		fs.Usage()
		return ExitUsage
	}
	node := fs.Arg(0)
	log, err := g.logger(e.stderr)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer: %v\n", err)
		return ExitUsage
	}
	cfg, ok := loadConfig(e, g)
	if !ok {
		return ExitUsage
	}
	if cfg.Fleet == nil {
		fmt.Fprintf(e.stderr, "renewer fleet forget: %s has no fleet block: there is no fleet to forget a node of\n", cfg.File)
		return ExitUsage
	}
	b, err := openFleetBlock(e.deps.Fleet, cfg.Fleet, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer: fleet mode: %v\n", err)
		return ExitFailure
	}
	defer b.Close()
	f, ok := b.(nodeForgetter)
	if !ok {
		fmt.Fprintln(e.stderr, "renewer fleet forget: this fleet backend cannot forget nodes")
		return ExitFailure
	}
	last, names, err := f.LastReport(ctx, node)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer fleet forget: %v\n", err)
		return ExitFailure
	}
	if len(names) == 0 {
		fmt.Fprintf(e.stderr, "renewer fleet forget: no node %q has reported under %s (see renewer status for the fleet's nodes)\n", node, cfg.Fleet.Etcd.Prefix)
		return ExitFailure
	}
	now := time.Now()
	if !status.IsGone(last, now, cfg.Fleet.NodeGoneAfter) && !*force {
		fmt.Fprintf(e.stderr, "renewer fleet forget: %s reported %s ago, within node_gone_after (%s): it is alive; stop it first, or use --force\n",
			node, now.Sub(last).Round(time.Second), cfg.Fleet.NodeGoneAfter)
		return ExitFailure
	}
	gone, err := f.Forget(ctx, node)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer fleet forget: %v\n", err)
		return ExitFailure
	}
	slices.Sort(gone)
	fmt.Fprintf(e.stdout, "%s\tforgotten\treports of %s removed (last report %s)\n", node, strings.Join(gone, ", "), last.UTC().Format(time.RFC3339))
	return ExitOK
}
