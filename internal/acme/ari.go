package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
)

// ErrNoARI means the CA's directory does not advertise renewalInfo.
var ErrNoARI = errors.New("the CA does not offer ACME Renewal Information (ARI)")

// RenewalInfo is a CA's suggested renewal window for one certificate (RFC 9773).
type RenewalInfo struct {
	Start, End     time.Time
	ExplanationURL string
	RetryAfter     time.Duration // when to ask again; 0 when the CA did not say
}

// ARICertID is the RFC 9773 identifier of leaf, as an order's "replaces" names it.
func ARICertID(leaf *x509.Certificate) (string, error) {
	return certificate.MakeARICertID(leaf)
}

// RenewalInfo fetches the CA's renewal window for leaf. It needs no
// registered account; the directory is fetched once per Client and the
// connection reused, so many certificates cost one GET each.
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*RenewalInfo, error) {
	lc, err := c.ariClient()
	if err != nil {
		return nil, err
	}
	return withContext(ctx, func() (*RenewalInfo, error) {
		r, err := lc.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: leaf})
		if errors.Is(err, api.ErrNoARI) {
			return nil, ErrNoARI
		}
		if err != nil {
			return nil, fmt.Errorf("renewal information: %w", err)
		}
		w := r.SuggestedWindow
		if !w.Start.Before(w.End) {
			return nil, fmt.Errorf("renewal information: invalid window %s .. %s", w.Start, w.End)
		}
		return &RenewalInfo{Start: w.Start, End: w.End, ExplanationURL: r.ExplanationURL, RetryAfter: r.RetryAfter}, nil
	})
}

func (c *Client) ariClient() (*lego.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ari != nil {
		return c.ari, nil
	}
	if err := c.loadAccountLocked(); err != nil {
		return nil, err
	}
	lc, err := c.lego(c.acc, certcrypto.EC256)
	if err != nil {
		return nil, err
	}
	c.ari = lc
	return lc, nil
}

// withContext runs f, returning early with ctx's error when ctx ends first
// (lego takes no context; f then finishes on its own).
func withContext[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case r := <-done:
		return r.v, r.err
	}
}
