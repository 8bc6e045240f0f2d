package drill

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// drillCerts is how many certificates TestMassRevocationDrill replaces:
// RENEWER_DRILL_CERTS, else 100 (1,000 take longer than CI's budget with
// the race detector on 2 cores; `make bench` runs 1,000).
func drillCerts(t *testing.T) int {
	s := os.Getenv("RENEWER_DRILL_CERTS")
	if s == "" {
		return 100
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("RENEWER_DRILL_CERTS=%q: want a positive integer", s)
	}
	return n
}

// The mass-revocation drill: N certificates installed and fresh under a
// running daemon (concurrency 16) against Pebble; Pebble's management API
// moves every window into the past; the daemon notices at its next
// renewal-information check (every 5 s here) and replaces every one: all
// replaced, no failure, exactly one order created per certificate, each
// naming the certificate it replaces (except where Pebble v2.10.1 cannot
// find the serial, and renewer orders again without), never more orders in
// flight than the concurrency, and no certificate left overdue.
func TestMassRevocationDrill(t *testing.T) {
	n := drillCerts(t)
	dir := t.TempDir()
	defer func() { // on failure, what the daemon had to say beyond the routine
		if !t.Failed() {
			return
		}
		raw, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		for l := range strings.SplitSeq(string(raw), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				t.Log(l)
			}
		}
	}()
	res, err := Run(context.Background(), Options{N: n, Concurrency: 16, SetupConcurrency: 32, Recheck: 5 * time.Second,
		Timeout: 8 * time.Minute, Dir: dir, Progress: t.Logf})
	if res != nil {
		t.Logf("%d certificates: issued in %.1f s; windows moved in %.2f s; first replacement order %.2f s and last replacement installed %.1f s after the change",
			res.N, res.Setup.Seconds(), res.Move.Seconds(), res.Noticed.Seconds(), res.ReplacedAll.Seconds())
		t.Logf("replaced %d, failed %d; orders created %d (duplicates %d), naming the certificate replaced %d, Pebble's serial bug %d (refused %d, other refusals %d), badNonce %d; at most %d orders in flight (concurrency %d); %.2f CA requests per certificate",
			res.Replaced, res.Failed, res.Created, res.Duplicates, res.WithReplaces, res.PebbleSerialBug, res.Refused, res.RefusedOther, res.BadNonce,
			res.MaxInFlight, res.Concurrency, res.RequestsPerCert())
		var eps []string
		for ep, c := range res.Requests {
			eps = append(eps, ep+": "+strconv.Itoa(c))
		}
		slices.Sort(eps)
		t.Logf("CA requests: %s", strings.Join(eps, ", "))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := res.OK(); err != nil {
		t.Fatal(err)
	}
}

// The drill's bar, on results it must refuse: each miss is named.
func TestResultOK(t *testing.T) {
	good := Result{N: 10, Concurrency: 4, Replaced: 10, Created: 10, WithReplaces: 9, PebbleSerialBug: 1, Refused: 1, MaxInFlight: 4}
	if err := good.OK(); err != nil {
		t.Fatalf("a clean drill refused: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(r *Result)
		want   string
	}{
		{"one not replaced", func(r *Result) { r.Replaced = 9 }, "9 of 10 certificates replaced"},
		{"a failure", func(r *Result) { r.Failed = 1 }, "1 failed attempts"},
		{"a duplicate order", func(r *Result) { r.Duplicates, r.Created = 1, 11 }, "1 certificates with more than one order"},
		{"an order without replaces", func(r *Result) { r.WithReplaces, r.MissingReplaces = 8, 1 }, "1 none"},
		{"an order naming another certificate", func(r *Result) { r.WithReplaces, r.WrongReplaces = 8, 1 }, "1 another one"},
		{"a refusal beyond Pebble's bug", func(r *Result) { r.RefusedOther = 1 }, "1 new orders refused"},
		{"over the concurrency", func(r *Result) { r.MaxInFlight = 5 }, "5 orders in flight at once, concurrency 4"},
		{"left overdue", func(r *Result) { r.OverdueLeft = 2 }, "2 certificates still overdue"},
	} {
		r := good
		tc.change(&r)
		if err := r.OK(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
