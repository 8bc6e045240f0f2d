package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// caEnv is one CA of the table with the DNS server its names resolve in.
type caEnv struct {
	kind string
	ca   *testca.CA
	knot *testca.Knot
}

// startCAEnv starts a Knot serving example.test (every name 127.0.0.1,
// RFC 2136 updates with the "renewer" key) and a CA of the kind resolving
// through it, with 24-hour certificates.
func startCAEnv(t *testing.T, kind string) *caEnv {
	t.Helper()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "renewer", Records: []string{"* A 127.0.0.1"}})
	o := testca.Options{DNSServer: knot.Addr, Validity: 24 * time.Hour}
	var ca *testca.CA
	switch kind {
	case testca.KindPebble:
		ca = testca.StartT(t, o)
	case testca.KindStepCA:
		ca = testca.StartStepCAT(t, o)
	default:
		t.Fatalf("unknown CA kind %q", kind)
	}
	return &caEnv{kind: kind, ca: ca, knot: knot}
}

// agent opens an agent for this CA on certs (HCL), in a fresh directory.
func (e *caEnv) agent(t *testing.T, certs string) (*Agent, *config.Config, *syncLog) {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = %q
  email        = "ops@example.test"
  accept_terms = true
  ca_bundle    = %q
}
%s`, e.ca.Directory, e.ca.CABundle, certs)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	logs := &syncLog{t: t}
	a, err := New(cfg, Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), DNSProviders: testProviders})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, cfg, logs
}

// listen is the standalone HTTP-01 challenge block for this CA.
func (e *caEnv) listen() string {
	return fmt.Sprintf(`challenge "http" { listen = "127.0.0.1:%d" }`, e.ca.HTTPPort)
}

// issued checks a result that brought a new certificate for names, and
// returns the live certificate's facts.
func issued(t *testing.T, a *Agent, c config.Certificate, res status.Result, want status.Action) *certinfo.Facts {
	t.Helper()
	if res.Action != want || !res.OK() {
		t.Fatalf("result %+v, want %s", res, want)
	}
	f := a.Inspect(c).Facts
	if f == nil || f.Serial != res.Serial || !f.KeyMatches {
		t.Fatalf("live certificate %+v, result serial %s", f, res.Serial)
	}
	if err := f.Check(c.Domains, time.Now()); err != nil {
		t.Fatalf("live certificate: %v", err)
	}
	// Both CAs are set to 24 h; step-ca backdates NotBefore by a minute.
	if life := f.Lifetime(); life < 24*time.Hour-time.Second || life > 24*time.Hour+2*time.Minute {
		t.Errorf("lifetime %s, want 24h", life)
	}
	return f
}

// TestCATable runs the core flows against each real CA: Pebble and
// Smallstep's step-ca. Every flow is the same code for both.
func TestCATable(t *testing.T) {
	t.Parallel()
	flows := []struct {
		name string
		run  func(t *testing.T, e *caEnv)
	}{
		{"issue http-01 standalone", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "www" {
  domains = ["www.example.test", "example.test"]
  %s
}`, e.listen()))
			issued(t, a, cfg.Certificates[0], pass(t, a, PassOptions{})[0], status.Obtained)
		}},
		{"issue http-01 webroot", func(t *testing.T, e *caEnv) {
			webroot := t.TempDir()
			serveDir(t, fmt.Sprintf("127.0.0.1:%d", e.ca.HTTPPort), webroot)
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "web" {
  domains = ["webroot.example.test"]
  challenge "http" { webroot = %q }
}`, webroot))
			issued(t, a, cfg.Certificates[0], pass(t, a, PassOptions{})[0], status.Obtained)
			// The challenge file is gone afterwards.
			left, _ := filepath.Glob(filepath.Join(webroot, ".well-known", "acme-challenge", "*"))
			if len(left) != 0 {
				t.Errorf("challenge files left in the webroot: %v", left)
			}
		}},
		{"issue tls-alpn-01", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "alpn" {
  domains = ["alpn.example.test"]
  challenge "tls-alpn" { listen = "127.0.0.1:%d" }
}`, e.ca.TLSPort))
			issued(t, a, cfg.Certificates[0], pass(t, a, PassOptions{})[0], status.Obtained)
		}},
		{"issue dns-01 rfc2136", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "wild" {
  domains = ["*.wild.example.test", "wild.example.test"]
%s}`, rfc2136Challenge(e.knot)))
			issued(t, a, cfg.Certificates[0], pass(t, a, PassOptions{})[0], status.Obtained)
		}},
		{"IP address identifier", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "ip" {
  domains = ["127.0.0.1", "ip.example.test"]
  %s
}`, e.listen()))
			leaf := issued(t, a, cfg.Certificates[0], pass(t, a, PassOptions{})[0], status.Obtained).Leaf
			if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || fmt.Sprint(leaf.DNSNames) != "[ip.example.test]" {
				t.Errorf("IPs %v, names %v", leaf.IPAddresses, leaf.DNSNames)
			}
		}},
		{"renew when due by lifetime", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "due" {
  ari     = false
  domains = ["due.example.test"]
  %s
}`, e.listen()))
			c := cfg.Certificates[0]
			first := issued(t, a, c, pass(t, a, PassOptions{})[0], status.Obtained)
			// Two thirds of the lifetime left: not due.
			a.now = func() time.Time { return first.NotBefore.Add(first.Lifetime() / 3).Add(-time.Minute) }
			if res := pass(t, a, PassOptions{}); res[0].Action != status.Skipped {
				t.Fatalf("before the renewal time: %+v", res[0])
			}
			// Less than a third left: due, renewed without --force.
			a.now = func() time.Time { return first.NotBefore.Add(first.Lifetime() * 2 / 3).Add(time.Minute) }
			res := pass(t, a, PassOptions{})
			a.now = time.Now
			second := issued(t, a, c, res[0], status.Renewed)
			if second.Serial == first.Serial {
				t.Error("same serial after renewal")
			}
		}},
		{"forced renew", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "force" {
  domains = ["force.example.test"]
  %s
}`, e.listen()))
			c := cfg.Certificates[0]
			first := issued(t, a, c, pass(t, a, PassOptions{})[0], status.Obtained)
			if res := pass(t, a, PassOptions{}); res[0].Action != status.Skipped {
				t.Fatalf("second pass: %+v", res[0])
			}
			second := issued(t, a, c, pass(t, a, PassOptions{Force: true})[0], status.Renewed)
			if second.Serial == first.Serial {
				t.Error("same serial after forced renewal")
			}
		}},
		{"revoke", func(t *testing.T, e *caEnv) {
			a, cfg, _ := e.agent(t, fmt.Sprintf(`certificate "rev" {
  domains = ["revoke.example.test"]
  %s
}`, e.listen()))
			c := cfg.Certificates[0]
			f := issued(t, a, c, pass(t, a, PassOptions{})[0], status.Obtained)
			const superseded = 4
			rev, err := a.Revoke(context.Background(), c, superseded)
			if err != nil {
				t.Fatal(err)
			}
			if rev.Serial != f.Serial || rev.CA != e.ca.Directory {
				t.Errorf("revoked %+v", rev)
			}
			checkRevoked(t, e, f.Serial, superseded)
		}},
		{"daemon pass", func(t *testing.T, e *caEnv) {
			_, cfg, _ := e.agent(t, fmt.Sprintf(`
daemon {
  jitter = "0s"
  check  = "@every 1h"
}
certificate "d1" {
  domains = ["d1.example.test"]
  %[1]s
}
certificate "d2" {
  domains = ["d2.example.test"]
  %[1]s
}`, e.listen()))
			logs, stop := runDaemon(t, cfg)
			st, err := openStore(cfg)
			if err != nil {
				t.Fatal(err)
			}
			waitLive(t, st, "d1")
			waitLive(t, st, "d2")
			waitLog(t, logs, "next wake-up") // the pass ended and the daemon sleeps
			if err := stop(); err != nil {
				t.Fatalf("RunDaemon: %v", err)
			}
		}},
		{"account re-registered when the CA forgot it", func(t *testing.T, e *caEnv) {
			a, cfg, logs := e.agent(t, fmt.Sprintf(`certificate "acct" {
  domains = ["acct.example.test"]
  %s
}`, e.listen()))
			c := cfg.Certificates[0]
			first := issued(t, a, c, pass(t, a, PassOptions{})[0], status.Obtained)
			if err := e.ca.Forget(context.Background()); err != nil {
				t.Fatal(err)
			}
			second := issued(t, a, c, pass(t, a, PassOptions{Force: true})[0], status.Renewed)
			if second.Serial == first.Serial {
				t.Error("same serial after renewal")
			}
			if !strings.Contains(logs.String(), "no longer knows the stored account") {
				t.Error("no log line says the account was registered again")
			}
		}},
	}
	for _, kind := range []string{testca.KindPebble, testca.KindStepCA} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := startCAEnv(t, kind)
			// In order on one CA: standalone HTTP-01 flows share its port.
			for _, f := range flows {
				t.Run(f.name, func(t *testing.T) { f.run(t, e) })
			}
		})
	}
}

// serveDir serves dir over plain HTTP on addr, as nginx serves a webroot.
func serveDir(t *testing.T, addr, dir string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// checkRevoked asks the CA whether serial (hex) is revoked with reason:
// step-ca's CRL lists it; Pebble's management API reports its status.
func checkRevoked(t *testing.T, e *caEnv, serial string, reason int) {
	t.Helper()
	want, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		t.Fatalf("serial %q", serial)
	}
	switch e.kind {
	case testca.KindStepCA:
		crl, err := e.ca.CRL()
		if err != nil {
			t.Fatal(err)
		}
		for _, entry := range crl.RevokedCertificateEntries {
			if entry.SerialNumber.Cmp(want) == 0 {
				if entry.ReasonCode != reason {
					t.Errorf("CRL reason %d, want %d", entry.ReasonCode, reason)
				}
				return
			}
		}
		t.Errorf("serial %s not in step-ca's CRL (%d entries)", serial, len(crl.RevokedCertificateEntries))
	case testca.KindPebble:
		body, err := e.ca.Get("/cert-status-by-serial/" + serial)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"Status": "Revoked"`) || !strings.Contains(string(body), fmt.Sprintf(`"Reason": %d`, reason)) {
			t.Errorf("Pebble's status of %s: %s", serial, body)
		}
	}
}
