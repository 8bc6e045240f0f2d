package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/report"
)

const accountArgs = "rollover [--ca NAME] [--force]"

// cmdAccount manages the ACME accounts: `account rollover` gives one a new
// key (RFC 8555 §7.3.5).
func cmdAccount(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "account", accountArgs)
	caFlag := fs.String("ca", "", "rollover: the CA whose account to roll over: its directory URL, a shorthand (letsencrypt) or its host; default: the acme block's")
	force := fs.Bool("force", false, "rollover: go ahead although records naming the account key (dns-persist) are not visible yet")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUsage
	}
	action, rest := fs.Arg(0), fs.Args()[1:]
	if code, ok := parse(fs, rest); !ok { // flags may follow the action
		return code
	}
	if action != "rollover" || fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "renewer account: unknown action %q (the one action is rollover)\n", action)
		fs.Usage()
		return ExitUsage
	}
	a, _, code := newAgent(e, g)
	if a == nil {
		return code
	}
	defer a.Close()
	log, _ := g.logger(e.stderr)
	r, err := a.RolloverAccount(ctx, agent.RolloverOptions{CA: *caFlag, Force: *force})
	for _, rec := range r.Records {
		fmt.Fprintf(e.stdout, "record\t%s\t%s\tTXT %q\n", rec.Cert, rec.Name, rec.Value)
	}
	var usage *agent.UsageError
	if errors.As(err, &usage) {
		fmt.Fprintf(e.stderr, "renewer account rollover: %v\n", err)
		return ExitUsage
	}
	if rep := newReporter(log, a); rep != nil {
		rep.AccountRolled(report.AccountRollover{CA: r.CA, Account: r.Account, Old: r.Old, New: r.New, Fleet: r.Fleet, Settled: r.Settled, Err: err})
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewReportTimeout)
		defer cancel()
		if cerr := rep.Close(cctx); cerr != nil {
			log.Error("some notifications were not delivered", "err", cerr)
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "renewer account rollover: %v\n", err)
		return ExitFailure
	}
	scope := "this node"
	if r.Fleet {
		scope = "the fleet (every node takes it before its next order)"
	}
	fmt.Fprintf(e.stdout, "%s\trolled over\taccount %s\tkey %s (was %s)\tfor %s\n", caName(r.CA), r.Account, r.New, r.Old, scope)
	return ExitOK
}
