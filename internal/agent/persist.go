package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
)

// persistRequest is the acme side of a dns-persist challenge block.
func persistRequest(p *config.DNSPersist) *acme.PersistRequest {
	if p == nil {
		return &acme.PersistRequest{}
	}
	return &acme.PersistRequest{Wildcard: p.Wildcard, PersistUntil: p.PersistUntil, Resolvers: p.Resolvers}
}

// PersistRecords is what one CA needs published for a certificate that
// uses the dns-persist challenge.
type PersistRecords struct {
	Directory string
	Info      *acme.PersistInfo // nil when Err is set
	// Published is nil when every record is visible through the
	// challenge's resolvers and would validate now; else what is missing
	// or wrong (an *acme.PersistRecordError, or why the lookup failed).
	Published error
	Err       error // the CA could not be asked (unreachable, no account)
}

// ErrNotPersist: the certificate does not use the dns-persist challenge.
var ErrNotPersist = errors.New("does not use the dns-persist challenge")

// PersistRecords asks each configured CA (the primary, then the
// fallbacks: each needs its own record) which TXT records c needs, for
// renewer's account there (registered first if need be), and whether they
// are published. It places no order unless a CA's directory lists no
// issuer domain (then a first authorization tells it). With staging, the
// CAs' staging twins are asked (what `renew --dry-run` orders from).
func (a *Agent) PersistRecords(ctx context.Context, c config.Certificate, staging bool) ([]PersistRecords, error) {
	if c.Challenge.Type != config.ChallengeDNSPersist {
		return nil, fmt.Errorf("certificate %q %w", c.Name, ErrNotPersist)
	}
	req := persistRequest(c.Challenge.Persist)
	var out []PersistRecords
	for _, ca := range a.orderCAs(staging) {
		r := PersistRecords{Directory: ca.Directory}
		client, err := a.client(ctx, ca)
		if err == nil {
			r.Info, err = client.PersistRecords(ctx, c.Domains, *req)
		}
		if err != nil {
			r.Err = err
		} else {
			r.Published = acme.CheckPersist(ctx, c.Domains, r.Info.Issuers, r.Info.AccountURI, *req, a.now())
		}
		out = append(out, r)
	}
	return out, nil
}
