package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// The CA's window is fetched and stored with a moment chosen inside it; a
// restart keeps the moment without asking again; when the CA moves the window
// into the past (as after a revocation), the next check renews at once and
// the order names the certificate it replaces.
func TestARIWindowStoredAndReplaces(t *testing.T) {
	t.Parallel()
	caLog := &syncLog{t: t}
	ca := testca.StartT(t, testca.Options{Log: caLog})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["ari.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))

	res := pass(t, a, PassOptions{})
	if !res[0].OK() {
		t.Fatalf("issue: %+v", res[0])
	}
	st, _ := a.Store().LoadState("www")
	live, _ := a.Store().Live("www")
	f, _ := certinfo.Load(live.Fullchain, live.Key)
	w := st.ARI
	if w == nil || w.Serial != f.Serial || w.Unsupported || w.Start.IsZero() {
		t.Fatalf("ARI not stored after issuance: %+v", w)
	}
	// Pebble's window: two days around the point with a third of the lifetime left.
	ideal := f.NotAfter.Add(time.Second).Add(-f.NotAfter.Add(time.Second).Sub(f.NotBefore) / 3)
	if d := w.Start.Sub(ideal.Add(-24 * time.Hour)); d < -time.Second || d > time.Second {
		t.Errorf("window start %s, want about %s", w.Start, ideal.Add(-24*time.Hour))
	}
	if w.Chosen.Before(w.Start) || w.Chosen.After(w.End) {
		t.Errorf("chosen %s outside [%s, %s]", w.Chosen, w.Start, w.End)
	}
	if d := w.NextFetch.Sub(w.FetchedAt); d != 6*time.Hour {
		t.Errorf("next fetch after %s, want Pebble's Retry-After of 6h", d)
	}
	in := a.Inspect(cfg.Certificates[0])
	if in.ARI == nil || in.Decision.Due || !in.Decision.At.Equal(w.Chosen) {
		t.Errorf("plan does not follow the chosen moment: %+v %+v", in.ARI, in.Decision)
	}

	// A restart: the stored answer is fresh, nothing is asked, nothing moves.
	b, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if res := pass(t, b, PassOptions{}); res[0].Action != status.Skipped {
		t.Fatalf("after restart: %+v", res[0])
	}
	st2, _ := b.Store().LoadState("www")
	if !st2.ARI.Chosen.Equal(w.Chosen) || !st2.ARI.FetchedAt.Equal(w.FetchedAt) {
		t.Errorf("restart moved the ARI state: %+v -> %+v", w, st2.ARI)
	}

	// The CA now wants the certificate replaced (a window in the past, as
	// Pebble answers for a revoked certificate). Once the stored answer is
	// stale (7h later), the next pass fetches it and renews at once.
	past := time.Now().Add(-time.Hour).UTC()
	ari, _ := json.Marshal(map[string]any{
		"suggestedWindow": map[string]string{"start": past.Format(time.RFC3339), "end": past.Add(time.Minute).Format(time.RFC3339)},
		"explanationURL":  "https://ca.example.test/incident/42",
	})
	leaf, _ := os.ReadFile(live.Cert)
	if err := ca.Post("/set-renewal-info/", map[string]string{"Certificate": string(leaf), "ARIResponse": string(ari)}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(7 * time.Hour)
	b.now = func() time.Time { return later }
	res = pass(t, b, PassOptions{})
	if res[0].Action != status.Renewed || res[0].Decision.Reason != plan.ARINow {
		t.Fatalf("after the CA moved the window into the past: %+v", res[0])
	}
	st3, _ := b.Store().LoadState("www")
	if st3.ARI == nil || st3.ARI.Serial != res[0].Serial {
		t.Errorf("no ARI for the new certificate: %+v", st3.ARI)
	}
	// Pebble marks the old certificate's order replaced only when the new
	// order carried "replaces". Pebble v2.10.1 cannot find its own
	// certificates whose serial has the top bit set: it refuses such an
	// order, and renewer places it again without "replaces" (acme,
	// client.go), so only other serials can show it.
	if f.Leaf.SerialNumber.BitLen()%8 == 0 {
		t.Logf("serial %s has its top bit set: Pebble cannot match replaces for it", f.Serial)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(caLog.String(), "has been marked as replaced") {
		if time.Now().After(deadline) {
			t.Fatal("the renewal order did not carry replaces (Pebble never marked the old order replaced)")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A CA without ARI (or with ARI off) leaves the lifetime rule in charge.
func TestARIOff(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, cfg := setup(t, ca, fmt.Sprintf(`
defaults { ari = false }
certificate "www" {
  domains = ["noari.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	if res := pass(t, a, PassOptions{}); !res[0].OK() {
		t.Fatalf("issue: %+v", res[0])
	}
	st, _ := a.Store().LoadState("www")
	if st.ARI != nil {
		t.Errorf("ARI fetched with ari = false: %+v", st.ARI)
	}
	in := a.Inspect(cfg.Certificates[0])
	if want := plan.RenewAt(in.Facts, cfg.Certificates[0].RenewBefore); !in.Decision.At.Equal(want) {
		t.Errorf("renewal at %s, want the lifetime rule's %s", in.Decision.At, want)
	}
}

// A certificate revoked at the CA by someone else is renewed at the next
// check that asks the CA again:
// Pebble answers a revoked certificate's renewal information with a window
// in the past.
func TestARIRevokedRenewedAtNextCheck(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["revoked.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	res := pass(t, a, PassOptions{})
	if !res[0].OK() {
		t.Fatalf("issue: %+v", res[0])
	}
	if _, err := a.Revoke(context.Background(), cfg.Certificates[0], 1); err != nil {
		t.Fatal(err)
	}
	// As if someone else had revoked it (another tool, the CA): renewer's
	// state does not know (TestRevokedKnownIsDue covers what renewer knows).
	st, _ := a.Store().LoadState("www")
	st.RevokedSerial = ""
	if err := a.Store().SaveState("www", st); err != nil {
		t.Fatal(err)
	}
	// Before the stored answer is stale nothing happens; at the next check
	// after it (Pebble's Retry-After is 6h), the certificate is renewed.
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Skipped {
		t.Fatalf("before the ARI answer is stale: %+v", res[0])
	}
	later := time.Now().Add(6*time.Hour + time.Minute)
	a.now = func() time.Time { return later }
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Renewed || res[0].Decision.Reason != plan.ARINow {
		t.Fatalf("after revocation: %+v", res[0])
	}
}

// Defect: a certificate revoked with `renewer revoke --no-renew` stayed
// live and "ok" when the CA offers no ARI. Renewer knows it revoked it: it
// is critical and due at once, and the next pass replaces it.
func TestRevokedKnownIsDue(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["revoked-known.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  ari     = false
}`, ca.HTTPPort))
	res := pass(t, a, PassOptions{})
	if !res[0].OK() {
		t.Fatalf("issue: %+v", res[0])
	}
	if _, err := a.Revoke(context.Background(), cfg.Certificates[0], 4); err != nil {
		t.Fatal(err)
	}
	in := a.Inspect(cfg.Certificates[0])
	if !in.Revoked || in.Health != plan.Critical || !in.Decision.Due || in.Decision.Reason != plan.Revoked || in.Ready {
		t.Fatalf("after revoke --no-renew: health %s due %v (%s) ready %v", in.Health, in.Decision.Due, in.Decision.Reason, in.Ready)
	}
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Renewed || res[0].Decision.Reason != plan.Revoked || res[0].Serial == in.Facts.Serial {
		t.Fatalf("the pass after: %+v", res[0])
	}
	if in := a.Inspect(cfg.Certificates[0]); in.Revoked || in.Health != plan.OK {
		t.Fatalf("after the replacement: health %s revoked %v", in.Health, in.Revoked)
	}
}

// Defect: renew_before at or above the lifetime ("30d" with a CA that
// issues 24-hour certificates) made every new certificate due at once: a
// new certificate at every retry, forever. The default rule applies
// instead (said at validate, in the log and in status), so one issuance per
// lifetime fraction; and an averted storm on record is cleared once the
// certificate is no longer due.
func TestRenewBeforeLongerThanLifetime(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{Validity: 24 * time.Hour})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "day" {
  domains      = ["day.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  renew_before = "30d"
  ari          = false
}`, ca.HTTPPort))
	if r := pass(t, a, PassOptions{})[0]; r.Action != status.Obtained || !r.OK() {
		t.Fatalf("first pass: %+v", r)
	}
	in := a.Inspect(cfg.Certificates[0])
	if in.Decision.Due || in.Health != plan.OK || !strings.Contains(in.Decision.Note, "renew_before 30d is not shorter than the certificate's lifetime") ||
		in.State.Failures != 0 {
		t.Fatalf("fresh 24-hour certificate: due %v (%s) health %s note %q failures %d", in.Decision.Due, in.Decision.Reason, in.Health, in.Decision.Note, in.State.Failures)
	}
	if w := RuleWarnings(cfg); len(w) != 1 || !strings.Contains(w[0], `certificate "day": renew_before 30d`) || !strings.HasPrefix(w[0], cfg.File+":") {
		t.Errorf("validate's warnings: %q", w)
	}
	// The next passes within the first half of the lifetime order nothing.
	for _, after := range []time.Duration{time.Minute, time.Hour, 11 * time.Hour} {
		a.now = func() time.Time { return time.Now().Add(after) }
		if r := pass(t, a, PassOptions{}); r[0].Action != status.Skipped {
			t.Fatalf("%s later: %+v", after, r[0])
		}
	}
	// Past half the lifetime (the default rule for lifetimes of ten days or
	// less): one renewal. The test's clock runs 13 hours ahead of the CA's,
	// so the new certificate looks half gone at once: the storm guard holds
	// the next attempt back and says to check the clock.
	a.now = func() time.Time { return time.Now().Add(13 * time.Hour) }
	if r := pass(t, a, PassOptions{}); r[0].Action != status.Renewed || r[0].Decision.Reason != plan.InWindow {
		t.Fatalf("13h later: %+v", r[0])
	}
	if r := pass(t, a, PassOptions{}); r[0].Action != status.Waiting || !strings.Contains(r[0].Err.Error(), "clock") {
		t.Fatalf("right after, with the clock off: %+v", r[0])
	}
	if in := a.Inspect(cfg.Certificates[0]); in.Health != plan.Warning || in.State.FailedStep != store.StepDueAtOnce {
		t.Fatalf("with the storm on record: health %s state %+v", in.Health, in.State)
	}
	// The clock is right again: the first pass clears the failure, orders nothing.
	a.now = time.Now
	if r := pass(t, a, PassOptions{}); r[0].Action != status.Skipped {
		t.Fatalf("with the clock right: %+v", r[0])
	}
	if in := a.Inspect(cfg.Certificates[0]); in.Health != plan.OK || in.State.Failures != 0 || in.State.LastError != "" || !in.State.NextAttempt.IsZero() {
		t.Fatalf("after the pass: health %s state %+v", in.Health, in.State)
	}
}
