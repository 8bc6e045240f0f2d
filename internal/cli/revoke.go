package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/agent"
)

func cmdRevoke(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "revoke", "[--reason R] [--no-renew] NAME")
	reasonFlag := fs.String("reason", "unspecified", "why: unspecified, keyCompromise, superseded, affiliationChanged or cessationOfOperation")
	noRenew := fs.Bool("no-renew", false, "only revoke; do not obtain a replacement")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "renewer revoke: name exactly one certificate")
		fs.Usage()
		return ExitUsage
	}
	reason, err := agent.ParseReason(*reasonFlag)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer revoke: --reason: %v\n", err)
		return ExitUsage
	}
	a, certs, code := openSelected(e, g, "revoke", fs.Args())
	if a == nil {
		return code
	}
	defer a.Close()
	rev, err := a.Revoke(ctx, certs[0], reason)
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer revoke: %s: %v\n", certs[0].Name, err)
		return ExitFailure
	}
	fmt.Fprintf(e.stdout, "%s\trevoked\tserial %s at %s (reason %s)\n", rev.Name, rev.Serial, caName(rev.CA), *reasonFlag)
	log, _ := g.logger(e.stderr)
	if *noRenew {
		reportNow(ctx, log, a, certs) // critical now: renewer knows it revoked it
		return ExitOK
	}
	// A key revoked for compromise is never certified again.
	results, err := runPass(ctx, log, a, agent.PassOptions{Force: true, Names: fs.Args(), NewKey: reason == 1})
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer revoke: %v\n", err)
		return ExitFailure
	}
	r := results[0]
	fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", r.Name, r.Action, oneLine(resultDetail(r, time.Now())))
	if !r.OK() {
		return ExitFailure
	}
	return ExitOK
}

// caName is a directory URL shortened to its host (and path, when the host
// alone is ambiguous), "-" when unknown.
func caName(dir string) string {
	if dir == "" {
		return "-"
	}
	u, err := url.Parse(dir)
	if err != nil || u.Host == "" {
		return dir
	}
	return u.Host + strings.TrimSuffix(u.Path, "/directory")
}
