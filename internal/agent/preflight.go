package agent

import (
	"context"
	"fmt"
	"net"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/preflight"
)

// CheckCredential builds c's DNS provider (dns challenge only), contacting
// no CA: an error names what is missing. See CheckCredentials.
func CheckCredential(c config.Certificate) error {
	if c.Challenge.Type != config.ChallengeDNS || c.Challenge.DNS == nil {
		return nil
	}
	return acme.CheckDNS(*dnsRequest(c.Challenge.DNS))
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
