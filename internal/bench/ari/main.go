// Command ari measures renewal-information (ARI) checks against a local
// Pebble: N certificates configured, all installed and fresh, every stored
// ARI answer stale, so one `renew` pass asks the CA about each of them.
// Issuing N real certificates would take minutes, so it issues -distinct of
// them and installs each under N/distinct names; every name is still its own
// request. Target (issue 5): 1,000 certificates in under 5 s on loopback.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

func main() {
	n := flag.Int("n", 1000, "certificates to check")
	distinct := flag.Int("distinct", 20, "real certificates issued by Pebble")
	flag.Parse()
	if err := run(*n, *distinct); err != nil {
		fmt.Fprintf(os.Stderr, "ari bench: %v\n", err)
		os.Exit(1)
	}
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
