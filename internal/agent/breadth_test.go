package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/providers/dns/rfc2136"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// rfc2136Challenge is a certificate's dns challenge block that updates
// knot's zones with RFC 2136 (the provider testProviders links).
func rfc2136Challenge(knot *testca.Knot) string {
	return fmt.Sprintf(`  challenge "dns" {
    provider = "rfc2136"
    env = {
      DNSUPDATE_NAMESERVER        = %q
      DNSUPDATE_TSIG_KEY          = "renewer"
      DNSUPDATE_TSIG_SECRET       = %q
      DNSUPDATE_TSIG_ALGORITHM    = "hmac-sha256"
      DNSUPDATE_SEQUENCE_INTERVAL = "1"
    }
    propagation_timeout = "30s"
    polling_interval    = "200ms"
    resolvers           = [%q]
  }
`, knot.Addr, knot.Keys["renewer"], knot.Addr)
}

// testProviders is the one DNS provider the agent tests link.
func testProviders(name string) (acme.DNSProvider, error) {
	if name != "rfc2136" {
		return nil, fmt.Errorf("provider %q not linked into the agent tests", name)
	}
	p, err := rfc2136.NewDNSProvider()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// setupHCL writes src as renewer.hcl in dir and opens an agent on it.
func setupHCL(t *testing.T, dir, src string) (*Agent, *config.Config) {
	t.Helper()
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})), DNSProviders: testProviders})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, cfg
}

// With the first directory dead, the certificate comes from the fallback,
// and the version records which CA issued it.
func TestFallbackDeadFirstDirectory(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := setupHCL(t, t.TempDir(), fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  email        = "ops@example.test"
  accept_terms = true
  fallback {
    directory = %q
    ca_bundle = %q
  }
}
certificate "www" {
  domains = ["fallback.example.test"]
  challenge "tls-alpn" { listen = "127.0.0.1:%d" }
}`, port, ca.Directory, ca.CABundle, ca.TLSPort))
	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Obtained {
		t.Fatalf("result %+v", res[0])
	}
	in := a.Inspect(a.cfg.Certificates[0])
	if in.CA != ca.Directory {
		t.Errorf("Inspection.CA = %q, want %q", in.CA, ca.Directory)
	}
	m, err := store.ReadMeta(in.Live)
	if err != nil {
		t.Fatal(err)
	}
	if m.CA != ca.Directory || m.Account != acme.AccountKey(ca.Directory, "ops@example.test") {
		t.Errorf("meta = %+v", m)
	}
}

// Revocation uses the account that ordered the certificate even after the
// config's e-mail (and so its account) changed; renewing afterwards works.
func TestRevokeAfterConfigChange(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	hcl := func(email string) string {
		return fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = %q
  accept_terms = true
}
certificate "www" {
  domains   = ["revoke.example.test"]
  reuse_key = true
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.Directory, ca.CABundle, email, ca.HTTPPort)
	}
	a, _ := setupHCL(t, dir, hcl("first@example.test"))
	if res := pass(t, a, PassOptions{}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	first := a.Inspect(a.cfg.Certificates[0]).Facts
	a.Close()

	b, cfg := setupHCL(t, dir, hcl("second@example.test"))
	rev, err := b.Revoke(context.Background(), cfg.Certificates[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Serial != first.Serial || rev.CA != ca.Directory {
		t.Errorf("revoked %+v", rev)
	}
	if st, _ := b.Store().LoadState("www"); st.LastResult != "revoked" {
		t.Errorf("state after revoke: %+v", st)
	}
	// The CA knows it is revoked: a second request is refused as such.
	if _, err := b.Revoke(context.Background(), cfg.Certificates[0], 1); err == nil || !strings.Contains(err.Error(), "alreadyRevoked") {
		t.Errorf("second revoke: %v", err)
	}
	// After a revocation for key compromise the key is not reused, reuse_key or not.
	oldKey, _ := os.ReadFile(b.Inspect(cfg.Certificates[0]).Live.Key)
	res := pass(t, b, PassOptions{Force: true, NewKey: true})
	if res[0].Action != status.Renewed {
		t.Fatalf("renew after revoke: %+v", res[0])
	}
	in := b.Inspect(cfg.Certificates[0])
	if in.Facts.Serial == first.Serial {
		t.Error("not renewed")
	}
	if newKey, _ := os.ReadFile(in.Live.Key); string(newKey) == string(oldKey) {
		t.Error("the compromised key was reused")
	}
}

// reuse_key keeps the live key across renewals.
func TestReuseKeyAcrossRenewals(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, _ := setup(t, ca, `
certificate "www" {
  domains   = ["keep.example.test"]
  reuse_key = true
  challenge "http" { listen = "127.0.0.1:`+strconv.Itoa(ca.HTTPPort)+`" }
}`)
	pass(t, a, PassOptions{})
	v1, _ := a.Store().Live("www")
	pass(t, a, PassOptions{Force: true})
	v2, _ := a.Store().Live("www")
	k1, _ := os.ReadFile(v1.Key)
	k2, _ := os.ReadFile(v2.Key)
	if v1.ID == v2.ID || string(k1) != string(k2) || len(k1) == 0 {
		t.Errorf("versions %s, %s: key reused = %v", v1.ID, v2.ID, string(k1) == string(k2))
	}
}

// Missing DNS credentials are found by CheckCredentials, at the challenge
// block's position, without a CA.
func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	_, cfg := setupHCL(t, t.TempDir(), `
acme { directory = "https://127.0.0.1:1/dir" }
certificate "ok" {
  domains = ["ok.example.test"]
  challenge "dns" {
    provider = "rfc2136"
    env      = { DNSUPDATE_NAMESERVER = "127.0.0.1:53" }
  }
}
certificate "bad" {
  domains = ["bad.example.test"]
  challenge "dns" {
    provider = "rfc2136"
  }
}`)
	errs := CheckCredentials(cfg, testProviders)
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one", errs)
	}
	msg := errs[0].Error()
	if !strings.Contains(msg, "renewer.hcl:12:3: certificate \"bad\"") || !strings.Contains(msg, "DNSUPDATE_NAMESERVER") {
		t.Errorf("error = %s", msg)
	}
}

// The config's dns challenge, eab and profile reach the CA: a wildcard
// through RFC 2136 updates to a real Knot, from a Pebble that requires
// external account binding, with the short-lived profile's lifetime.
func TestDNSWildcardEABProfileFromConfig(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "renewer"})
	hmac := "c2VjcmV0LWZvci10aGUtdGVzdC1vbmx5LTAxMjM0NTY3ODk"
	ca := testca.StartT(t, testca.Options{
		DNSServer: knot.Addr, EAB: map[string]string{"kid-7": hmac},
		Profiles: map[string]time.Duration{"shortlived": 160 * time.Hour},
	})
	a, cfg := setupHCL(t, t.TempDir(), fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true
  eab {
    kid  = "kid-7"
    hmac = %q
  }
}
certificate "wild" {
  domains = ["*.example.test", "example.test"]
  profile = "shortlived"
%s}`, ca.Directory, ca.CABundle, hmac, rfc2136Challenge(knot)))
	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Obtained {
		t.Fatalf("result %+v", res[0])
	}
	f := a.Inspect(cfg.Certificates[0]).Facts
	if strings.Join(f.Names, ",") != "*.example.test,example.test" {
		t.Errorf("names %v", f.Names)
	}
	if life := f.NotAfter.Sub(f.NotBefore); life < 160*time.Hour-time.Second || life > 160*time.Hour+time.Second {
		t.Errorf("lifetime %s, want the shortlived profile's 160h", life)
	}
}
