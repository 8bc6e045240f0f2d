// Package drill is the mass-revocation drill (issue 17): N certificates,
// installed and fresh, under a running daemon (agent.RunDaemon, as `renewer
// run` runs it) against Pebble with ARI, behind a proxy that counts every
// request and every order; Pebble's management API (POST /set-renewal-info/)
// then moves every certificate's renewal window into the past, as Let's
// Encrypt did in its March 2026 rehearsal. The daemon notices at its next
// renewal-information check and orders every replacement, naming the
// certificate it replaces. Run measures it: the time from the window change
// to the last replacement installed, the orders per certificate (from the
// proxy, so a duplicate is counted, not assumed), the failures, the orders
// in flight at once and the CA requests per certificate.
//
// Its test (drill_test.go) runs it in `make test`; `make bench` and `make
// bench-ari` run it with 1,000 certificates (internal/bench/ari -drill).
package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// Options shape a drill. Zero values get the defaults in brackets.
type Options struct {
	N                int           // certificates [1000]
	Concurrency      int           // the daemon's daemon.concurrency [16]
	SetupConcurrency int           // for issuing the N certificates first [32]
	Recheck          time.Duration // the renewal-information re-check (agent.Options.ARIRecheck) [10s]
	Timeout          time.Duration // for every replacement after the window change [10m]
	Dir              string        // work directory (required): the CA, the storage, the daemon's log
	// Log is the daemon's log; nil: Dir/daemon.log.
	Log *slog.Logger
	// Progress, when set, is told what the drill is doing.
	Progress func(format string, args ...any)
}

// Result is what a drill measured.
type Result struct {
	N, Concurrency int
	Recheck        time.Duration
	Setup          time.Duration // issuing the N certificates (before the daemon starts)
	Move           time.Duration // posting the N window changes to Pebble
	// Noticed is from the window change (the first POST) to the first
	// replacement order; ReplacedAll to the last replacement installed (the
	// latest install time in the certificates' state).
	Noticed, ReplacedAll time.Duration
	Replaced             int // certificates whose live serial changed
	Failed               int // failed attempts reported by the daemon after the change
	// Orders by certificate name, from the proxy: every new-order request
	// for its domain after the change, created or refused.
	Orders map[string][]testca.Order
	// Created is the orders Pebble created; Duplicates the certificates
	// with more than one created order.
	Created, Duplicates int
	// WithReplaces is the created orders whose "replaces" names the very
	// certificate they replace; WrongReplaces those naming another.
	// MissingReplaces those without "replaces" for a certificate Pebble
	// can find.
	WithReplaces, WrongReplaces, MissingReplaces int
	// PebbleSerialBug is the certificates whose serial has its top bit set:
	// Pebble v2.10.1 cannot find their order for "replaces" (it compares the
	// serial's DER bytes, with a leading zero, to its own hex without one)
	// and refuses the order; renewer orders again without "replaces". Each
	// costs one refused new-order request.
	PebbleSerialBug int
	// Refused is the new-order requests Pebble refused, other than its
	// random badNonce rejections (BadNonce), which lego sends again;
	// RefusedOther those of certificates without Pebble's serial bug.
	Refused, RefusedOther, BadNonce int
	Requests                        map[string]int // CA requests by endpoint, from the change to the last install
	MaxInFlight                     int            // orders created and not yet downloaded at once
	// OverdueLeft is the certificates whose status still shows an ARI
	// window open and unreplaced (status.Condition.ARIOverdueSince) after
	// the daemon's last pass: 0 when the drill is over.
	OverdueLeft int
}

// RequestsPerCert is the CA requests per certificate, from the window
// change to the last replacement installed.
func (r Result) RequestsPerCert() float64 {
	total := 0
	for _, n := range r.Requests {
		total += n
	}
	return float64(total) / float64(max(r.N, 1))
}

// OK reports whether the drill met its bar: every certificate replaced,
// no failure, no duplicate order, every created order naming the
// certificate it replaces (or, for Pebble's serial bug, ordered again
// without), the daemon's concurrency kept.
func (r Result) OK() error {
	var errs []error
	if r.Replaced != r.N {
		errs = append(errs, fmt.Errorf("%d of %d certificates replaced", r.Replaced, r.N))
	}
	if r.Failed != 0 {
		errs = append(errs, fmt.Errorf("%d failed attempts", r.Failed))
	}
	if r.Duplicates != 0 {
		errs = append(errs, fmt.Errorf("%d certificates with more than one order", r.Duplicates))
	}
	if r.Created != r.N {
		errs = append(errs, fmt.Errorf("%d orders created for %d certificates", r.Created, r.N))
	}
	if r.WrongReplaces != 0 || r.MissingReplaces != 0 || r.WithReplaces+r.PebbleSerialBug != r.N {
		errs = append(errs, fmt.Errorf("%d orders named the certificate they replace, %d another one, %d none, %d hit Pebble's serial bug, of %d",
			r.WithReplaces, r.WrongReplaces, r.MissingReplaces, r.PebbleSerialBug, r.N))
	}
	if r.RefusedOther != 0 {
		errs = append(errs, fmt.Errorf("%d new orders refused for certificates without Pebble's serial bug", r.RefusedOther))
	}
	if r.MaxInFlight > r.Concurrency {
		errs = append(errs, fmt.Errorf("%d orders in flight at once, concurrency %d", r.MaxInFlight, r.Concurrency))
	}
	if r.OverdueLeft != 0 {
		errs = append(errs, fmt.Errorf("%d certificates still overdue by their ARI window", r.OverdueLeft))
	}
	return errors.Join(errs...)
}

// observer counts what the daemon's passes report after the change.
type observer struct {
	mu       sync.Mutex
	passes   int
	failed   int
	renewed  map[string]bool
	overdue  int
	counting bool
	done     chan struct{} // closed when every certificate was renewed
	n        int
}

func (o *observer) HookRan(string, string, error) {}
func (o *observer) Finished(r status.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.counting {
		return
	}
	switch r.Action {
	case status.Failed:
		o.failed++
	case status.Renewed:
		o.renewed[r.Name] = true
	}
}
func (o *observer) PassDone(_ context.Context, views []status.View, _ bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.passes++
	o.overdue = 0
	for _, v := range views {
		if !v.ARIOverdueSince.IsZero() {
			o.overdue++
		}
	}
	if o.counting && len(o.renewed) == o.n && o.done != nil {
		close(o.done)
		o.done = nil
	}
}
func (o *observer) Close(context.Context) error { return nil }

// Run runs one drill. It returns an error when the drill could not be run
// (the CA would not start, setup failed, the timeout passed); a drill that
// ran but missed its bar returns its Result, which OK judges.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Dir == "" {
		return nil, errors.New("drill: Options.Dir is required")
	}
	o.N = orDefault(o.N, 1000)
	o.Concurrency = orDefault(o.Concurrency, 16)
	o.SetupConcurrency = orDefault(o.SetupConcurrency, 32)
	if o.Recheck <= 0 {
		o.Recheck = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if o.Log == nil {
		f, err := os.Create(filepath.Join(o.Dir, "daemon.log"))
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		defer f.Close()
		o.Log = slog.New(slog.NewTextHandler(f, nil))
	}

	ca, err := testca.Start(ctx, testca.Options{Dir: filepath.Join(o.Dir, "ca")})
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	defer ca.Stop()
	proxy, err := testca.StartCountingProxy(ca)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	defer proxy.Close()

	var src strings.Builder
	fmt.Fprintf(&src, "storage { path = %q }\nacme {\n  directory    = %q\n  ca_bundle    = %q\n  accept_terms = true\n}\ndaemon {\n  concurrency = %d\n  jitter      = \"0s\"\n}\n",
		filepath.Join(o.Dir, "state"), proxy.Directory, ca.CABundle, o.Concurrency)
	for i := range o.N {
		fmt.Fprintf(&src, "certificate \"c%04d\" {\n  domains = [\"c%04d.drill.example.test\"]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n", i, i, ca.HTTPPort)
	}
	file := filepath.Join(o.Dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	res := &Result{N: o.N, Concurrency: o.Concurrency, Recheck: o.Recheck}

	// 1. N certificates issued, installed and fresh (their ARI answers too).
	progress("issuing %d certificates from Pebble (concurrency %d)", o.N, o.SetupConcurrency)
	start := time.Now()
	a, err := agent.New(cfg, agent.Options{Log: o.Log, Concurrency: o.SetupConcurrency, ARIRecheck: o.Recheck})
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	results, err := a.RunOnce(ctx, agent.PassOptions{})
	a.Close()
	if err != nil {
		return nil, fmt.Errorf("drill: setup: %w", err)
	}
	for _, r := range results {
		if r.Action != status.Obtained {
			return nil, fmt.Errorf("drill: setup: %s: %s %v", r.Name, r.Action, r.Err)
		}
	}
	res.Setup = time.Since(start)
	st, err := store.Open(cfg.Storage.Path, cfg.Storage.KeepVersions)
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	type old struct {
		pem     []byte
		serial  string
		ariID   string
		pebbleX bool // Pebble v2.10.1 cannot match "replaces" for it
	}
	olds := make(map[string]old, o.N)
	domainOf := map[string]string{}
	for _, c := range cfg.Certificates {
		v, err := st.Live(c.Name)
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		id, err := acme.ARICertID(f.Leaf)
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		raw, err := os.ReadFile(v.Cert)
		if err != nil {
			return nil, fmt.Errorf("drill: %w", err)
		}
		olds[c.Name] = old{pem: raw, serial: f.Serial, ariID: id, pebbleX: f.Leaf.SerialNumber.BitLen()%8 == 0}
		domainOf[c.Domains[0]] = c.Name
	}

	// 2. The daemon, running, idle after its first pass.
	obs := &observer{renewed: map[string]bool{}, n: o.N}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- agent.RunDaemon(dctx, cfg, agent.DaemonOptions{
			Options:     agent.Options{Log: o.Log, ARIRecheck: o.Recheck},
			NewReporter: func(*config.Config, *store.Store) (agent.PassReporter, error) { return obs, nil },
		})
	}()
	stopDaemon := func() error {
		stop()
		return <-done
	}
	for {
		obs.mu.Lock()
		p := obs.passes
		obs.mu.Unlock()
		if p > 0 {
			break
		}
		select {
		case err := <-done:
			return nil, fmt.Errorf("drill: the daemon stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	progress("daemon running (concurrency %d, renewal information re-checked every %s); moving %d windows into the past", o.Concurrency, o.Recheck, o.N)

	// 3. Every window into the past, through Pebble's management API.
	allDone := make(chan struct{})
	obs.mu.Lock()
	obs.counting, obs.done = true, allDone
	obs.mu.Unlock()
	proxy.Reset()
	t0 := time.Now()
	ari, _ := json.Marshal(map[string]any{
		"suggestedWindow": map[string]string{"start": t0.Add(-time.Hour).UTC().Format(time.RFC3339), "end": t0.UTC().Format(time.RFC3339)},
		"explanationURL":  "https://ca.example.test/incident/drill",
	})
	names := make(chan string)
	var wg sync.WaitGroup
	var postMu sync.Mutex
	var postErr error
	for range 8 {
		wg.Go(func() {
			for name := range names {
				err := ca.Post("/set-renewal-info/", map[string]string{"Certificate": string(olds[name].pem), "ARIResponse": string(ari)})
				if err != nil {
					postMu.Lock()
					postErr = errors.Join(postErr, fmt.Errorf("%s: %w", name, err))
					postMu.Unlock()
				}
			}
		})
	}
	for _, c := range cfg.Certificates {
		names <- c.Name
	}
	close(names)
	wg.Wait()
	res.Move = time.Since(t0)
	if postErr != nil {
		_ = stopDaemon()
		return nil, fmt.Errorf("drill: set-renewal-info: %w", postErr)
	}
	progress("windows moved in %.2f s; waiting for the daemon", res.Move.Seconds())

	// 4. Wait until the daemon has replaced every one (or the timeout).
	var timedOut error
	select {
	case <-allDone:
	case <-time.After(o.Timeout):
		timedOut = fmt.Errorf("drill: not every certificate replaced within %s", o.Timeout)
	case err := <-done:
		return nil, fmt.Errorf("drill: the daemon stopped: %v", err)
	}
	res.Requests = proxy.Requests()
	orders := proxy.Orders()
	res.MaxInFlight = proxy.MaxInFlight()
	if err := stopDaemon(); err != nil {
		return nil, fmt.Errorf("drill: daemon: %w", err)
	}
	obs.mu.Lock()
	res.Failed, res.OverdueLeft = obs.failed, obs.overdue
	obs.mu.Unlock()

	// 5. What happened, from the disk and the proxy.
	var last time.Time
	for _, c := range cfg.Certificates {
		v, err := st.Live(c.Name)
		if err != nil {
			continue
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil || f.Serial == olds[c.Name].serial {
			continue
		}
		res.Replaced++
		s, err := st.LoadState(c.Name)
		if err == nil && s.LastSuccess.After(last) {
			last = s.LastSuccess
		}
	}
	if !last.IsZero() {
		res.ReplacedAll = last.Sub(t0)
	}
	res.Orders = map[string][]testca.Order{}
	first := time.Time{}
	for _, od := range orders {
		if len(od.Identifiers) == 0 {
			continue
		}
		name := domainOf[od.Identifiers[0]]
		res.Orders[name] = append(res.Orders[name], od)
		if first.IsZero() || od.At.Before(first) {
			first = od.At
		}
		switch {
		case od.Problem == "urn:ietf:params:acme:error:badNonce":
			res.BadNonce++
			continue
		case !od.Created():
			res.Refused++
			if !olds[name].pebbleX || od.Replaces != olds[name].ariID {
				res.RefusedOther++
			}
			continue
		}
		res.Created++
		switch od.Replaces {
		case olds[name].ariID:
			res.WithReplaces++
		case "":
			if !olds[name].pebbleX {
				res.MissingReplaces++
			}
		default:
			res.WrongReplaces++
		}
	}
	if !first.IsZero() {
		res.Noticed = first.Sub(t0)
	}
	for _, ods := range res.Orders {
		created := slices.DeleteFunc(slices.Clone(ods), func(od testca.Order) bool { return !od.Created() })
		if len(created) > 1 {
			res.Duplicates++
		}
	}
	for _, od := range olds {
		if od.pebbleX {
			res.PebbleSerialBug++
		}
	}
	return res, timedOut
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
