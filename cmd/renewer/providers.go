//go:build !lean

package main

import (
	"github.com/go-acme/lego/v4/providers/dns"

	"github.com/renewer/renewer/internal/acme"
)

// Every lego DNS provider is linked into the binary, here and only here:
// the registry imports some 195 providers and their SDKs (see
// internal/docs/performance.md, "Binary size and build time"), so the other
// packages' test binaries do without it.
func init() {
	acme.SetDNSProviders(func(name string) (acme.DNSProvider, error) {
		p, err := dns.NewDNSChallengeProviderByName(name)
		if err != nil {
			return nil, err // not p: lego returns a typed nil with its error
		}
		return p, nil
	})
}
