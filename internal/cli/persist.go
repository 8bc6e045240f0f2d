package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
)

const persistArgs = "record [--staging] [NAME...]"

// cmdDNSPersist is `renewer dns-persist record [NAME...]`: for each named
// certificate (all that use the dns-persist challenge when none is named)
// and each configured CA, the TXT record to publish once, in zone-file form
// and as name and value, and whether it is visible and would validate now.
// Exit 0: every record is published; 1: one is missing or wrong, or a CA
// could not be asked.
func cmdDNSPersist(ctx context.Context, e *env, g *globals, args []string) int {
	fs := flags(e, g, "dns-persist", persistArgs)
	staging := fs.Bool("staging", false, "the records for the CAs' staging twins (what renew --dry-run orders from; they have their own accounts)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 || fs.Arg(0) != "record" {
		fs.Usage()
		return ExitUsage
	}
	// Flags may follow the action too (record --log-level debug NAME).
	if code, ok := parse(fs, fs.Args()[1:]); !ok {
		return code
	}
	names := fs.Args()
	a, certs, code := openSelected(e, g, "dns-persist", names)
	if a == nil {
		return code
	}
	defer a.Close()
	if len(names) == 0 {
		certs = nil
		for _, c := range a.Config().Certificates {
			if c.Challenge.Type == config.ChallengeDNSPersist {
				certs = append(certs, c)
			}
		}
		if len(certs) == 0 {
			fmt.Fprintf(e.stderr, "renewer dns-persist: no certificate uses the dns-persist challenge\n")
			return ExitUsage
		}
	}
	exit := ExitOK
	for i, c := range certs {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		recs, err := a.PersistRecords(ctx, c, *staging)
		if errors.Is(err, agent.ErrNotPersist) {
			fmt.Fprintf(e.stderr, "renewer dns-persist: certificate %q uses the %s challenge, not dns-persist\n", c.Name, c.Challenge.Type)
			return ExitUsage
		}
		for _, r := range recs {
			fmt.Fprintf(e.stdout, "certificate %q at %s\n", c.Name, r.Directory)
			if r.Err != nil {
				fmt.Fprintf(e.stdout, "  ERROR: %s\n", oneLine(r.Err.Error()))
				exit = ExitFailure
				continue
			}
			in := r.Info
			fmt.Fprintf(e.stdout, "  account:  %s\n", in.AccountURI)
			fmt.Fprintf(e.stdout, "  issuer:   %s (from the CA's %s", in.IssuerDomain, in.Source)
			if len(in.Issuers) > 1 {
				fmt.Fprintf(e.stdout, "; it also accepts %s", strings.Join(in.Issuers[1:], ", "))
			}
			fmt.Fprintf(e.stdout, ")\n  form:     %s\n", in.Form)
			for _, t := range in.Records {
				fmt.Fprintf(e.stdout, "  record for %s:\n", strings.Join(t.Domains, ", "))
				fmt.Fprintf(e.stdout, "    %s\n", t.Zone)
				fmt.Fprintf(e.stdout, "    name:  %s\n", strings.TrimSuffix(t.Name, "."))
				fmt.Fprintf(e.stdout, "    value: %s\n", t.Value)
			}
			if r.Published == nil {
				fmt.Fprintf(e.stdout, "  published: yes, and it validates now\n")
				continue
			}
			exit = ExitFailure
			fmt.Fprintf(e.stdout, "  published: NO: %s\n", oneLine(r.Published.Error()))
		}
	}
	return exit
}
