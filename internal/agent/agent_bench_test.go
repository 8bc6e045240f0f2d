package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Benchmarks, not tests: `go test -run '^$' -bench . -benchmem ./internal/agent`.

// nothingDue installs n fresh certificates with fresh ARI answers, as after
// an earlier pass, and returns an agent on them (its CA is never contacted).
func nothingDue(b *testing.B, n int) *Agent {
	b.Helper()
	dir := b.TempDir()
	var src strings.Builder
	fmt.Fprintf(&src, "storage { path = %q }\nacme {\n  directory = \"https://127.0.0.1:1/dir\"\n  accept_terms = true\n}\n", filepath.Join(dir, "state"))
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		b.Fatal(err)
	}
	ca := certtest.NewCA(b, "bench CA")
	now := time.Now()
	for i := range n {
		name := fmt.Sprintf("c%04d", i)
		domain := name + ".example.test"
		fmt.Fprintf(&src, "certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:80\" }\n}\n", name, domain)
		chain, key := certtest.Issue(b, certtest.Options{Names: []string{domain}, CA: ca})
		leaf, _, _ := strings.Cut(string(chain), "-----END CERTIFICATE-----\n")
		v, err := st.Install(name, []string{domain}, store.Bundle{Cert: []byte(leaf + "-----END CERTIFICATE-----\n"), Chain: ca.CertPEM, Key: key}, now)
		if err != nil {
			b.Fatal(err)
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil {
			b.Fatal(err)
		}
		start := now.Add(50 * 24 * time.Hour)
		if err := st.SaveState(name, store.State{InstalledSerial: f.Serial, AppliedSerial: f.Serial, ARI: &store.ARIState{
			Serial: f.Serial, Start: start, End: start.Add(48 * time.Hour), Chosen: start.Add(time.Hour), FetchedAt: now, NextFetch: now.Add(6 * time.Hour),
		}}); err != nil {
			b.Fatal(err)
		}
	}
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	return a
}

// BenchmarkRunOnceNothingDue is a `renewer renew` pass that finds nothing
// due, per pass of 100 certificates.
func BenchmarkRunOnceNothingDue(b *testing.B) {
	a := nothingDue(b, 100)
	b.ReportAllocs()
	for b.Loop() {
		res, err := a.RunOnce(context.Background(), PassOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Action != status.Skipped {
				b.Fatalf("%s: %s %v", r.Name, r.Action, r.Err)
			}
		}
	}
}

// BenchmarkWakes is the daemon's "when next?" over 100 certificates.
func BenchmarkWakes(b *testing.B) {
	a := nothingDue(b, 100)
	b.ReportAllocs()
	for b.Loop() {
		if w := a.Wakes(); len(w) != 100 {
			b.Fatal(len(w))
		}
	}
}
