//go:build lean

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/acme"
)

// The lean build links four providers; others are refused by name.
func TestLeanProvidersWired(t *testing.T) {
	for _, name := range []string{"rfc2136", "acme-dns", "exec", "httpreq"} {
		err := acme.CheckDNS(acme.DNSRequest{Provider: name})
		var ce *acme.CredentialsError
		if err == nil || !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a missing-credentials error", name, err)
		}
	}
	err := acme.CheckDNS(acme.DNSRequest{Provider: "cloudflare"})
	if err == nil || !strings.Contains(err.Error(), "not in this lean build") {
		t.Errorf("cloudflare: %v, want refused by the lean build", err)
	}
}
