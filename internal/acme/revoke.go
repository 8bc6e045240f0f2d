package acme

import (
	"context"
	"fmt"

	"github.com/go-acme/lego/v4/certcrypto"
)

// Revocation reasons of RFC 5280 §5.3.1 that ACME accepts, by name.
var RevocationReasons = map[string]uint{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
}

// Revoke asks the CA to revoke the PEM certificate with reason, signed with
// the client's account (the one that ordered it).
func (c *Client) Revoke(ctx context.Context, certPEM []byte, reason uint) error {
	done := make(chan error, 1)
	go func() { done <- c.revoke(certPEM, reason) }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		return err
	}
}

func (c *Client) revoke(certPEM []byte, reason uint) error {
	acc, err := c.account()
	if err != nil {
		return err
	}
	lc, err := c.lego(acc, certcrypto.EC256)
	if err != nil {
		return err
	}
	if err := lc.Certificate.RevokeWithReason(certPEM, &reason); err != nil {
		return fmt.Errorf("acme: revoke at %s: %w", c.opts.Directory, err)
	}
	return nil
}
