package agent

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// windowIssuer answers every renewal-information request with one window.
type windowIssuer struct{ start, end time.Time }

func (w windowIssuer) Obtain(context.Context, config.Certificate, status.View, bool, bool) (*acme.Certificate, error) {
	return nil, fmt.Errorf("not in this test")
}

func (w windowIssuer) RenewalInfo(context.Context, config.CA, *x509.Certificate) (*acme.RenewalInfo, error) {
	return &acme.RenewalInfo{Start: w.start, End: w.end}, nil
}

// sharedStub is a fleet that this test never calls: fetchARI only asks
// whether the agent is in fleet mode.
type sharedStub struct{ store.Shared }

// Every node of a fleet stores the same moment in the CA's window for the
// same certificate, whatever its random source and whenever it fetched the
// window; single nodes still choose at random. The moment lies in the
// window and differs between certificates.
func TestFleetMomentSameOnEveryNode(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	win := windowIssuer{start: now.Add(20 * 24 * time.Hour), end: now.Add(22 * 24 * time.Hour)}
	chosen := func(fleet bool, rnd float64, at time.Time, serial string) time.Time {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(t.TempDir(), "renewer.hcl"), []byte("acme {}\n"))
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return at }, Rand: func() float64 { return rnd }, Issuer: win}
		if fleet {
			o.Fleet = sharedStub{}
		}
		a, err := New(cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var st store.State
		a.fetchARI(context.Background(), a.log, config.Certificate{Name: "www", ARI: true}, &certinfo.Facts{Serial: serial}, config.CA{}, &st)
		if st.ARI == nil || st.ARI.Chosen.IsZero() {
			t.Fatalf("no moment stored: %+v", st.ARI)
		}
		return st.ARI.Chosen
	}
	n1 := chosen(true, 0.1, now, "0a1b2c")
	n2 := chosen(true, 0.9, now.Add(3*time.Hour), "0a1b2c")
	if !n1.Equal(n2) {
		t.Errorf("two nodes chose %s and %s for one certificate", n1, n2)
	}
	if n1.Before(win.start) || n1.After(win.end) {
		t.Errorf("moment %s outside [%s, %s]", n1, win.start, win.end)
	}
	if other := chosen(true, 0.1, now, "ffee01"); other.Equal(n1) {
		t.Errorf("two certificates share the moment %s", n1)
	}
	if s1, s2 := chosen(false, 0.1, now, "0a1b2c"), chosen(false, 0.9, now, "0a1b2c"); s1.Equal(s2) {
		t.Errorf("single nodes no longer choose at random: %s", s1)
	}
}

// fleetMoment spreads certificates over the window.
func TestFleetMomentSpreads(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(48 * time.Hour)
	var halves [2]int
	for i := range 1000 {
		m := fleetMoment(fmt.Sprintf("%x", i*7919), start, end)
		if m.Before(start) || !m.Before(end) {
			t.Fatalf("moment %s outside the window", m)
		}
		halves[min(int(m.Sub(start)/(24*time.Hour)), 1)]++
	}
	if halves[0] < 400 || halves[1] < 400 {
		t.Errorf("1000 certificates: %v in the first and second half of the window", halves)
	}
	if m := fleetMoment("0a", end, start); !m.Equal(end) {
		t.Errorf("an empty window: %s", m)
	}
}
