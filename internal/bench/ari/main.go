// Command ari measures renewal-information (ARI) checks against a local
// Pebble: N certificates configured, all installed and fresh, every stored
// ARI answer stale, so one `renew` pass asks the CA about each of them.
// Issuing N real certificates would take minutes, so it issues -distinct of
// them and installs each under N/distinct names; every name is still its own
// request. Target (issue 5): 1,000 certificates in under 5 s on loopback.
//
// With -drill N it also runs the mass-revocation drill (issue 17,
// internal/bench/drill): N certificates under a running daemon whose
// windows Pebble moves into the past, replaced; it prints the time from the
// window change to the last replacement installed and the CA requests per
// certificate, and fails when the drill misses its bar.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/bench/drill"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

func main() {
	n := flag.Int("n", 1000, "certificates to check (0: no ARI pass)")
	distinct := flag.Int("distinct", 20, "real certificates issued by Pebble")
	drillN := flag.Int("drill", 0, "also run the mass-revocation drill (internal/bench/drill) with this many certificates (0: no drill)")
	drillConc := flag.Int("drill-concurrency", 16, "the drill daemon's daemon.concurrency")
	drillRecheck := flag.Duration("drill-recheck", 10*time.Second, "the drill daemon's renewal-information re-check interval")
	flag.Parse()
	if *n > 0 {
		if err := run(*n, *distinct); err != nil {
			fmt.Fprintf(os.Stderr, "ari bench: %v\n", err)
			os.Exit(1)
		}
	}
	if *drillN > 0 {
		if err := runDrill(*drillN, *drillConc, *drillRecheck); err != nil {
			fmt.Fprintf(os.Stderr, "ari bench: drill: %v\n", err)
			os.Exit(1)
		}
	}
}

// runDrill runs the mass-revocation drill and prints its figures; the
// first "drill:" line is what `make bench` (internal/bench/compare) reads.
func runDrill(n, concurrency int, recheck time.Duration) error {
	dir, err := os.MkdirTemp("", "renewer-drill-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res, err := drill.Run(context.Background(), drill.Options{N: n, Concurrency: concurrency, Recheck: recheck, Dir: dir,
		Progress: func(format string, args ...any) { fmt.Printf(format+"\n", args...) }})
	if err != nil {
		return err
	}
	fmt.Printf("drill: %d certificates, concurrency %d, renewal information re-checked every %s: last replacement installed %.1f s after the window change (first replacement order after %.2f s); %d replaced, %d failed, %d duplicate orders; %.2f CA requests per certificate\n",
		res.N, res.Concurrency, res.Recheck, res.ReplacedAll.Seconds(), res.Noticed.Seconds(), res.Replaced, res.Failed, res.Duplicates, res.RequestsPerCert())
	fmt.Printf("drill: setup (issuing %d certificates before the daemon starts) %.1f s; windows moved through Pebble's management API in %.2f s\n", res.N, res.Setup.Seconds(), res.Move.Seconds())
	fmt.Printf("drill: orders created %d, naming the certificate they replace %d; Pebble's serial bug %d (refused with replaces, ordered again without; %d refused); badNonce retries %d; at most %d orders in flight\n",
		res.Created, res.WithReplaces, res.PebbleSerialBug, res.Refused, res.BadNonce, res.MaxInFlight)
	eps := make([]string, 0, len(res.Requests))
	for ep := range res.Requests {
		eps = append(eps, ep)
	}
	slices.Sort(eps)
	for _, ep := range eps {
		fmt.Printf("drill: requests %s: %.2f per certificate\n", ep, float64(res.Requests[ep])/float64(res.N))
	}
	return res.OK()
}

func run(n, distinct int) error {
	dir, err := os.MkdirTemp("", "renewer-ari-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	ca, err := testca.Start(ctx, testca.Options{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return err
	}
	defer ca.Stop()

	head := fmt.Sprintf("storage { path = %q }\nacme {\n  directory = %q\n  ca_bundle = %q\n  accept_terms = true\n}\ndaemon { concurrency = %d }\n",
		filepath.Join(dir, "state"), ca.Directory, ca.CABundle, distinct)
	cert := func(name, domain string) string {
		return fmt.Sprintf("certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n", name, domain, ca.HTTPPort)
	}
	var src strings.Builder
	src.WriteString(head)
	for i := range distinct {
		src.WriteString(cert("seed"+strconv.Itoa(i), fmt.Sprintf("seed%d.example.test", i)))
	}
	file := filepath.Join(dir, "seed.hcl")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, agent.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("issuing %d certificates from Pebble...\n", distinct)
	res, err := a.RunOnce(ctx, agent.PassOptions{})
	a.Close()
	if err != nil {
		return err
	}
	for _, r := range res {
		if !r.OK() {
			return fmt.Errorf("%s: %v", r.Name, r.Err)
		}
	}

	// N names, each a copy of one of the real certificates; state without ARI.
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		return err
	}
	src.Reset()
	src.WriteString(head)
	for i := range n {
		seed := "seed" + strconv.Itoa(i%distinct)
		v, err := st.Live(seed)
		if err != nil {
			return err
		}
		b := store.Bundle{Cert: must(os.ReadFile(v.Cert)), Chain: must(os.ReadFile(v.Chain)), Key: must(os.ReadFile(v.Key))}
		name := fmt.Sprintf("c%05d", i)
		domain := fmt.Sprintf("seed%d.example.test", i%distinct)
		if _, err := st.Install(name, []string{domain}, b, time.Now()); err != nil {
			return err
		}
		f, _ := certinfo.Load(v.Fullchain, v.Key)
		if err := st.SaveState(name, store.State{InstalledSerial: f.Serial, AppliedSerial: f.Serial}); err != nil {
			return err
		}
		src.WriteString(cert(name, domain))
	}
	file = filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		return err
	}

	if os.Getenv("ARI_BENCH_BASELINE") != "" { // the same pass with ARI off: what ARI adds
		if err := os.WriteFile(file, []byte(strings.Replace(src.String(), "daemon {", "defaults { ari = false }\ndaemon {", 1)), 0o600); err != nil {
			return err
		}
	}
	start := time.Now()
	cfg, err = config.Load(file)
	if err != nil {
		return err
	}
	a, err = agent.New(cfg, agent.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	res, err = a.RunOnce(ctx, agent.PassOptions{})
	took := time.Since(start)
	a.Close()
	if err != nil {
		return err
	}
	if os.Getenv("ARI_BENCH_BASELINE") != "" {
		fmt.Printf("the same pass with ari = false: %.2f s\n", took.Seconds())
		return nil
	}
	fetched := 0
	for _, r := range res {
		s, _ := st.LoadState(r.Name)
		if s.ARI != nil && !s.ARI.Start.IsZero() && s.ARI.Error == "" {
			fetched++
		}
	}
	fmt.Printf("ARI check of %d certificates (one pass, windows fetched: %d): %.2f s (target < 5 s)\n", n, fetched, took.Seconds())
	if fetched != n {
		return fmt.Errorf("only %d of %d windows fetched", fetched, n)
	}
	return nil
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
