//go:build !lean

package main

import (
	"github.com/go-acme/lego/v4/providers/dns"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/fleet"
)

// wiring is what the full build links: every lego DNS provider (the
// registry imports some 200 SDKs, here and only here, so the other
// packages' test binaries do without it) and fleet mode on etcd.
func wiring() cli.Deps {
	return cli.Deps{DNSProviders: dnsProviders, Fleet: fleet.Opener}
}

func dnsProviders(name string) (acme.DNSProvider, error) {
	p, err := dns.NewDNSChallengeProviderByName(name)
	if err != nil {
		return nil, err // not p: lego returns a typed nil with its error
	}
	return p, nil
}
