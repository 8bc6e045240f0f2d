//go:build !lean

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/acme"
)

// The binary's wiring hands lego's whole registry to acme: providers the
// acme tests do not link build here, or fail only for want of credentials.
func TestAllProvidersWired(t *testing.T) {
	for _, name := range []string{"cloudflare", "digitalocean", "gandiv5", "hetzner", "ovh", "rfc2136", "exec"} {
		err := acme.CheckDNS(acme.DNSRequest{Providers: dnsProviders, Provider: name})
		var ce *acme.CredentialsError
		if err == nil || !errors.As(err, &ce) || strings.Contains(err.Error(), "unrecognized DNS provider") {
			t.Errorf("%s: %v, want a missing-credentials error", name, err)
		}
	}
	if err := acme.CheckDNS(acme.DNSRequest{Providers: dnsProviders, Provider: "rfc2136", Env: map[string]string{"DNSUPDATE_NAMESERVER": "127.0.0.1:53"}}); err != nil {
		t.Errorf("rfc2136 with its nameserver: %v", err)
	}
}
