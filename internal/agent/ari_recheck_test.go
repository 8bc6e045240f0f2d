package agent

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
)

// The daemon notices a window the CA moved into the past at its next
// renewal-information check: after Options.ARIRecheck when it is set (the
// mass-revocation drill's knob), else after the CA's Retry-After, kept to at
// least an hour. In fake time (a synctest bubble): the CA answers with a
// Retry-After of 6h and moves the window 10 minutes after the first issue.
func TestDaemonARIRecheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recheck time.Duration
		// when the replacement comes, after the window moved
		min, max time.Duration
	}{
		{"Retry-After (6h)", 0, 5*time.Hour + 49*time.Minute, 5*time.Hour + 51*time.Minute},
		{"ARIRecheck 1m", time.Minute, 0, time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var moved atomic.Int64 // unix nanoseconds of the move; 0: not yet
				iss := &fakeIssuer{t: t, ca: certtest.NewCA(t, "Fake CA"), validity: 90 * 24 * time.Hour,
					window: func(leaf *x509.Certificate) *acme.RenewalInfo {
						if m := moved.Load(); m != 0 && leaf.NotBefore.UnixNano() < m {
							at := time.Unix(0, m)
							return &acme.RenewalInfo{Start: at.Add(-time.Hour), End: at, RetryAfter: 6 * time.Hour}
						}
						start := leaf.NotBefore.Add(60 * 24 * time.Hour)
						return &acme.RenewalInfo{Start: start, End: start.Add(48 * time.Hour), RetryAfter: 6 * time.Hour}
					}}
				dir := t.TempDir()
				src := `storage { path = "state" }
acme {
  directory    = "https://ca.test/directory"
  accept_terms = true
}
daemon { jitter = "0s" }
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}`
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
						Log: slog.New(slog.NewTextHandler(testLog{t}, nil)), Issuer: iss, ARIRecheck: tc.recheck,
					}})
				}()
				time.Sleep(10*time.Minute + 500*time.Millisecond) // not on a whole second: certificates start on one
				synctest.Wait()
				if n := len(iss.times()); n != 1 {
					t.Fatalf("%d issuances before the window moved, want 1", n)
				}
				at := time.Now()
				moved.Store(at.UnixNano())
				for len(iss.times()) < 2 && time.Since(at) < 30*time.Hour {
					time.Sleep(time.Second)
					synctest.Wait()
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("RunDaemon: %v", err)
				}
				issued := iss.times()
				if len(issued) < 2 {
					t.Fatalf("not replaced within 30h of the window moving")
				}
				if lag := issued[1].Sub(at); lag < tc.min || lag > tc.max {
					t.Errorf("replaced %s after the window moved, want %s to %s", lag, tc.min, tc.max)
				}
			})
		})
	}
}
