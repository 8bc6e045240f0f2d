package agent

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/preflight"
)

// CheckCredential builds c's DNS provider (dns challenge only) with
// providers, contacting no CA: an error names what is missing. See
// CheckCredentials.
func CheckCredential(c config.Certificate, providers acme.DNSProviderFunc) error {
	if c.Challenge.Type != config.ChallengeDNS || c.Challenge.DNS == nil {
		return nil
	}
	return acme.CheckDNS(*dnsRequest(c.Challenge.DNS, providers))
}

// checkCredential is CheckCredential with the agent's providers.
func (a *Agent) checkCredential(c config.Certificate) error {
	return CheckCredential(c, a.dnsProviders)
}

// caaCheck says why the CAA records of c's names forbid a CA with these
// CAA identities, or nil. Names are looked up through the dns challenge's
// resolvers, else the system's; a lookup that fails forbids nothing (the
// CA decides).
func caaCheck(c config.Certificate) func(context.Context, []string) error {
	return func(ctx context.Context, ids []string) error {
		var resolvers []string
		if d := c.Challenge.DNS; d != nil && len(d.Resolvers) > 0 {
			resolvers = d.Resolvers
		} else if p := c.Challenge.Persist; p != nil && len(p.Resolvers) > 0 {
			resolvers = p.Resolvers
		} else if rs, err := preflight.SystemResolvers(); err == nil {
			resolvers = rs
		} else {
			return nil
		}
		for _, name := range c.Domains {
			if net.ParseIP(name) != nil {
				continue
			}
			set, err := preflight.LookupCAA(ctx, resolvers, name)
			if err != nil {
				continue
			}
			if ok, why := set.Permits(name, ids); !ok {
				return fmt.Errorf("CAA of %s at %s: %s, not %v", name, set.At, why, ids)
			}
		}
		return nil
	}
}

// PreflightError is a problem found before ordering that would waste the
// order (storage or install directory not writable): none was placed.
type PreflightError struct{ Findings []preflight.Finding }

func (e *PreflightError) Error() string {
	msgs := make([]string, 0, len(e.Findings))
	for _, f := range e.Findings {
		msgs = append(msgs, f.Problem+" ("+f.Fix+")")
	}
	return "not ordered: " + strings.Join(msgs, "; ")
}

// Preflight runs the local pre-flight checks of c (internal/preflight):
// storage and install directories writable, hook programs and DNS
// credentials present. They are what `renewer check` reports without the
// network; plan shows them too.
func (a *Agent) Preflight(c config.Certificate) []preflight.Finding {
	return append(preflight.Storage(a.cfg.Storage.Path), preflight.Local(c, preflight.Options{Credentials: a.checkCredential})...)
}

// preflightOrder runs the local checks of c before an order: warnings are
// logged, and a blocking finding (an install directory that cannot be
// written) stops the order before the CA is asked. The storage itself was
// checked just before, through the store (checkWritable).
func (a *Agent) preflightOrder(c config.Certificate) error {
	fs := preflight.Local(c, preflight.Options{Credentials: a.checkCredential})
	var blocking []preflight.Finding
	for _, f := range fs {
		if f.Level == preflight.Blocking {
			blocking = append(blocking, f)
			continue
		}
		a.log.Warn("pre-flight check: "+f.Problem, "cert", c.Name, "check", f.Check, "fix", f.Fix)
	}
	if len(blocking) > 0 {
		return &PreflightError{Findings: blocking}
	}
	return nil
}
