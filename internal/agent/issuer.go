package agent

import (
	"context"
	"crypto/x509"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
)

// Issuer is the ACME side as the agent sees it: obtaining a certificate
// and asking for its renewal window. The agent's own (lego through
// internal/acme, with fallback CAs) is used unless Options.Issuer sets
// another: schedule and daemon tests fake it, so that they run in a
// synctest bubble without a CA and without real sleeps.
type Issuer interface {
	// Obtain orders a certificate for c; in is c's inspection (the live
	// certificate, for "replaces" and key reuse).
	Obtain(ctx context.Context, c config.Certificate, in status.View, dryRun, mayReuse bool) (*acme.Certificate, error)
	// RenewalInfo asks ca for leaf's renewal window (acme.ErrNoARI when it
	// offers none).
	RenewalInfo(ctx context.Context, ca config.CA, leaf *x509.Certificate) (*acme.RenewalInfo, error)
}

// DNSProviderFunc builds a DNS provider by name (Options.DNSProviders):
// the binary's wiring passes what it links.
type DNSProviderFunc = acme.DNSProviderFunc

// legoIssuer is the agent's own Issuer.
type legoIssuer struct{ a *Agent }

func (l legoIssuer) Obtain(ctx context.Context, c config.Certificate, in status.View, dryRun, mayReuse bool) (*acme.Certificate, error) {
	return l.a.obtain(ctx, c, dryRun, in, mayReuse)
}

func (l legoIssuer) RenewalInfo(ctx context.Context, ca config.CA, leaf *x509.Certificate) (*acme.RenewalInfo, error) {
	client, err := l.a.client(ctx, ca)
	if err != nil {
		return nil, err
	}
	return client.RenewalInfo(ctx, leaf)
}
