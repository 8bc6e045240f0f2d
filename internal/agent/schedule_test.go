package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
)

// fakeIssuer issues certificates from a test CA at the (bubble's) current
// time, with a fixed lifetime, and answers renewal information through
// window (nil: the CA offers no ARI). It records when it issued.
type fakeIssuer struct {
	t        *testing.T
	ca       *certtest.CA
	validity time.Duration
	window   func(leaf *x509.Certificate) *acme.RenewalInfo

	mu     sync.Mutex
	issued []time.Time
}

func (f *fakeIssuer) Obtain(_ context.Context, c config.Certificate, _ status.View, _, _ bool) (*acme.Certificate, error) {
	now := time.Now()
	full, key := certtest.Issue(f.t, certtest.Options{Names: c.Domains, NotBefore: now, NotAfter: now.Add(f.validity), CA: f.ca})
	end := bytes.Index(full, []byte("-----END CERTIFICATE-----\n")) + len("-----END CERTIFICATE-----\n")
	f.mu.Lock()
	f.issued = append(f.issued, now)
	f.mu.Unlock()
	return &acme.Certificate{Cert: full[:end], Chain: full[end:], Key: key, Directory: "https://ca.test/directory", Account: "fake"}, nil
}

func (f *fakeIssuer) RenewalInfo(_ context.Context, _ config.CA, leaf *x509.Certificate) (*acme.RenewalInfo, error) {
	if f.window == nil {
		return nil, acme.ErrNoARI
	}
	return f.window(leaf), nil
}

func (f *fakeIssuer) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.issued...)
}

// daemonInBubble runs RunDaemon for d of the bubble's fake time on one
// certificate block with iss as its CA, and returns the live certificates
// it saw, in order.
func daemonInBubble(t *testing.T, iss *fakeIssuer, cert string, d time.Duration) []*certinfo.Facts {
	dir := t.TempDir()
	src := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = "https://ca.test/directory"
  accept_terms = true
}
daemon {
  jitter = "0s"
  check  = "@every 1h"
}
%s`, cert)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunDaemon(ctx, cfg, DaemonOptions{Options: Options{
			Log: slog.New(slog.NewTextHandler(testLog{t}, nil)), Issuer: iss,
		}})
	}()
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var seen []*certinfo.Facts
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond) // fake time: the bubble's clock
		synctest.Wait()
		v, err := st.Live("short")
		if err != nil {
			continue
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil {
			t.Fatalf("live certificate unreadable: %v", err)
		}
		if len(seen) == 0 || seen[len(seen)-1].Serial != f.Serial {
			seen = append(seen, f)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunDaemon: %v", err)
	}
	return seen
}

// With 30-second certificates and the lifetime rule, the daemon renews
// each one when half its lifetime is left, and not before: the schedule
// in fake time (a synctest bubble), with no CA and no real sleep.
func TestDaemonScheduleLifetimeRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		iss := &fakeIssuer{t: t, ca: certtest.NewCA(t, "Fake CA"), validity: 30 * time.Second}
		seen := daemonInBubble(t, iss, `
certificate "short" {
  ari     = false
  domains = ["short.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}`, 100*time.Second)
		issued := iss.times()
		// Issued at 0s, then every 15s (half of 30s): 0, 15, 30, ... 90.
		if len(issued) < 6 || len(issued) > 8 || len(seen) < 6 {
			t.Fatalf("%d issuances (%v), %d live certificates seen in 100s, want about 7", len(issued), issued, len(seen))
		}
		for i := 1; i < len(issued); i++ {
			if gap := issued[i].Sub(issued[i-1]); gap < 15*time.Second || gap > 17*time.Second {
				t.Errorf("issuance %d came %s after the one before, want 15s (half the lifetime)", i, gap)
			}
		}
	})
}

// With ARI, the daemon renews at the moment it chose inside the CA's window
// (here: the second third of the lifetime), not by the lifetime rule.
func TestDaemonScheduleARIWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		iss := &fakeIssuer{t: t, ca: certtest.NewCA(t, "Fake CA"), validity: 30 * time.Second,
			window: func(leaf *x509.Certificate) *acme.RenewalInfo {
				return &acme.RenewalInfo{Start: leaf.NotBefore.Add(20 * time.Second), End: leaf.NotBefore.Add(25 * time.Second), RetryAfter: time.Hour}
			}}
		daemonInBubble(t, iss, `
certificate "short" {
  domains = ["short.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}`, 90*time.Second)
		issued := iss.times()
		if len(issued) < 3 {
			t.Fatalf("%d issuances in 90s, want at least 3: %v", len(issued), issued)
		}
		for i := 1; i < len(issued); i++ {
			// Certificates start on whole seconds; the window is 20s..25s in.
			if gap := issued[i].Sub(issued[i-1]); gap < 19*time.Second || gap > 26*time.Second {
				t.Errorf("issuance %d came %s after the one before, want inside the CA's window (20s to 25s)", i, gap)
			}
		}
	})
}
