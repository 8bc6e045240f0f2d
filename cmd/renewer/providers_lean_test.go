//go:build lean

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/cli"
)

// The lean build links four providers; others are refused by name.
func TestLeanProvidersWired(t *testing.T) {
	for _, name := range []string{"rfc2136", "acme-dns", "exec", "httpreq"} {
		err := acme.CheckDNS(acme.DNSRequest{Providers: dnsProviders, Provider: name})
		var ce *acme.CredentialsError
		if err == nil || !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a missing-credentials error", name, err)
		}
	}
	err := acme.CheckDNS(acme.DNSRequest{Providers: dnsProviders, Provider: "cloudflare"})
	if err == nil || !strings.Contains(err.Error(), "not in this lean build") {
		t.Errorf("cloudflare: %v, want refused by the lean build", err)
	}
}

// The lean build has no fleet mode: a fleet block is refused with its line.
func TestLeanNoFleet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "renewer.hcl")
	src := `storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:1/dir"
  accept_terms = true
}
fleet {
  node     = "edge-1"
  key_file = "fleet.key"
  etcd { endpoints = ["127.0.0.1:1"] }
}
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), wiring(), []string{"status", "--config", file}, &out, &errb)
	if code == cli.ExitOK || !strings.Contains(errb.String(), file+":6: this build of renewer has no fleet mode") {
		t.Errorf("status exit %d, stderr:\n%s", code, errb.String())
	}
}
