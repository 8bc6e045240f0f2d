package agent

import (
	"errors"
	"fmt"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
)

// Fleet mode and TLS-ALPN-01: like HTTP-01 tokens, pending TLS-ALPN-01
// challenges go through the fleet's storage (when it can hold them:
// internal/fleet's Backend implements acme.ChallengeCertStore), and the
// daemon keeps every tls-alpn listener open, so whichever node the CA
// reaches behind a load balancer answers.

// shareTLSALPN makes the TLS-ALPN-01 solver share its challenges with the
// fleet and answer the fleet's for this node's tls-alpn names.
func (a *Agent) shareTLSALPN() {
	cs, ok := a.fleet.(acme.ChallengeCertStore)
	if !ok {
		return
	}
	var names []string
	for _, c := range a.cfg.Certificates {
		if c.Challenge.Type == config.ChallengeTLSALPN {
			names = append(names, c.Domains...)
		}
	}
	a.tlsSolver.SetShared(cs, names)
}

// ServeTLSALPN opens the TLS-ALPN-01 listeners of every tls-alpn
// certificate now and keeps them open, so this node answers challenges
// another node of the fleet started. The daemon calls it in fleet mode,
// beside ServeChallenges.
func (a *Agent) ServeTLSALPN() error {
	if _, ok := a.fleet.(acme.ChallengeCertStore); !ok {
		return nil
	}
	seen := map[string]bool{}
	var errs []error
	for _, c := range a.cfg.Certificates {
		addr := c.Challenge.Listen
		if c.Challenge.Type != config.ChallengeTLSALPN || addr == "" || seen[addr] {
			continue
		}
		seen[addr] = true
		if err := a.tlsSolver.Keep(addr); err != nil {
			errs = append(errs, fmt.Errorf("certificate %q: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}
