package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/schedule"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// faultCerts is how many certificates TestCAFaults manages; `make soak`
// raises it with RENEWER_FAULT_CERTS.
func faultCerts(t *testing.T) int { return envInt(t, "RENEWER_FAULT_CERTS", 5) }

// faultRounds is how many times TestCAFaults has every certificate replaced
// across a CA outage; `make soak` raises it with RENEWER_FAULT_ROUNDS.
func faultRounds(t *testing.T) int { return envInt(t, "RENEWER_FAULT_ROUNDS", 1) }

// faultNonceReject is the percentage of nonces Pebble rejects in
// TestCAFaults; `make soak` raises it to 50 with RENEWER_FAULT_NONCEREJECT.
// Each rejection costs lego a real back-off of 200 ms or more, which at 50%
// made the test take a minute.
func faultNonceReject(t *testing.T) int { return envInt(t, "RENEWER_FAULT_NONCEREJECT", 15) }

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// TestCAFaults runs the daemon's schedule on a fake clock against a Pebble
// that rejects some of its nonces (faultNonceReject), behind a proxy that
// answers 15% of requests with 500, 503, 429 (Retry-After), a reset
// connection or a slow answer.
// Every certificate is obtained. Then, in each round, the CA asks for every
// certificate to be replaced and goes down for six (fake) hours: the
// requests while it is down are bounded by the backoff schedule and the live
// files never change; when it is back, every certificate is renewed.
func TestCAFaults(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{Env: []string{fmt.Sprintf("PEBBLE_WFE_NONCEREJECT=%d", faultNonceReject(t))}})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	proxy, err := testca.StartFaultProxy(ca, 0.15, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	stopWatch := watchPebble(t, ca)
	defer stopWatch()
	n, rounds := faultCerts(t), faultRounds(t)
	var certs strings.Builder
	for i := range n {
		fmt.Fprintf(&certs, "certificate \"c%d\" {\n  domains = [\"c%d.faults.example.test\"]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n", i, i, ca.HTTPPort)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "renewer.hcl")
	src := fmt.Sprintf("storage { path = \"state\" }\nacme {\n  directory = %q\n  ca_bundle = %q\n  accept_terms = true\n}\ndaemon {\n  jitter = \"0s\"\n  concurrency = 8\n}\n%s",
		proxy.Directory, ca.CABundle, certs.String())
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, err := New(cfg, Options{Log: quietLog(t), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rnd := rand.New(rand.NewPCG(seed, 2))

	// daemon runs the daemon's loop on the fake clock until until, or until
	// done() holds; it returns the passes and the attempts made.
	var lastErr error
	daemon := func(until time.Time, done func() bool) (passes, attempts, obtained int) {
		for now.Before(until) && !done() {
			res := pass(t, a, PassOptions{})
			passes++
			for _, r := range res {
				switch r.Action {
				case status.Obtained, status.Renewed:
					attempts++
					obtained++
				case status.Failed:
					attempts++
					lastErr = r.Err
				}
			}
			now = schedule.Next(now, a.Wakes(), cfg.Daemon.Schedule, 0, rnd).At.Add(time.Millisecond)
		}
		return
	}
	// allLive: every certificate is live with a serial other than the one
	// it had before (serials[name]; nil: none before).
	allLive := func(serials map[string]string) func() bool {
		return func() bool {
			for i := range n {
				name := "c" + strconv.Itoa(i)
				f, err := a.liveFacts(name)
				if err != nil || f.Serial == serials[name] {
					return false
				}
			}
			return true
		}
	}
	var total struct{ obtained, attempts, downAttempts int }
	var downReqs, downBound int64

	// 1. Faults and bad nonces: everything is obtained in the end. An
	// order takes about ten requests, so at a 15% fault rate about one
	// attempt in five gets through; the backoff (capped at 6 hours) gives
	// each certificate some 40 attempts in a week, so that all of 100 fail
	// is a one-in-a-hundred chance.
	start := now
	passes, attempts, obtained := daemon(now.Add(7*24*time.Hour), allLive(nil))
	if !allLive(nil)() {
		t.Fatalf("not every certificate was obtained within a week of faults (%d passes, %d requests, faults %v; last error: %v)", passes, proxy.Requests(), proxy.Faults(), lastErr)
	}
	total.obtained, total.attempts = obtained, attempts
	t.Logf("faults: %d certificates obtained in %d attempts over %d passes and %s; %d requests, faults injected %v",
		obtained, attempts, passes, now.Sub(start).Round(time.Minute), proxy.Requests(), proxy.Faults())

	for round := 1; round <= rounds; round++ {
		// 2. The CA asks for every certificate to be replaced (as after a
		// mass revocation: renewal windows in the past), and then goes
		// down for six hours: the backoff bounds the requests, and the live
		// files do not change.
		first := map[string]string{}
		var before []byte
		past := time.Now().Add(-time.Hour).UTC()
		ari := fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`, past.Format(time.RFC3339), past.Add(time.Minute).Format(time.RFC3339))
		for i := range n {
			name := "c" + strconv.Itoa(i)
			f, err := a.liveFacts(name)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, name, err)
			}
			first[name] = f.Serial
			v, _ := a.Store().Live(name)
			before = append(before, snapshot(t, v.Cert, v.Key, v.Chain)...)
			leaf, _ := os.ReadFile(v.Cert)
			if err := ca.Post("/set-renewal-info/", map[string]string{"Certificate": string(leaf), "ARIResponse": ari}); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(7 * time.Hour) // the stored answers are stale
		proxy.SetRate(0)
		ins, todo := make([]*status.View, n), make([]int, n)
		for i, c := range cfg.Certificates {
			in := a.Inspect(c)
			ins[i], todo[i] = &in, i
		}
		a.refreshARI(context.Background(), todo, ins)
		proxy.SetRate(0.15)
		for _, c := range cfg.Certificates {
			if in := a.Inspect(c); !in.Decision.Due || in.Decision.Reason != plan.ARINow {
				t.Fatalf("round %d: %s after the CA moved its window into the past: %+v", round, c.Name, in.Decision)
			}
		}
		proxy.SetDown(true)
		reqs := proxy.Requests()
		passes, attempts, _ = daemon(now.Add(6*time.Hour), func() bool { return false })
		down := proxy.Requests() - reqs
		var after []byte
		for i := range n {
			v, _ := a.Store().Live("c" + strconv.Itoa(i))
			after = append(after, snapshot(t, v.Cert, v.Key, v.Chain)...)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("round %d: live files changed while the CA was down", round)
		}
		// Backoff from 1m doubling: 1+2+4+…+256 minutes passes six hours
		// after 9 attempts; ARI is re-asked at most hourly. Allow some slack.
		if perCert := float64(attempts) / float64(n); perCert > 11 {
			t.Errorf("round %d: %.1f attempts per certificate in six hours of outage: the backoff does not hold", round, perCert)
		}
		bound := int64(n * (11 + 7))
		if down > bound {
			t.Errorf("round %d: %d requests in six hours of outage for %d certificates (bound %d): a request storm", round, down, n, bound)
		}
		total.downAttempts += attempts
		downReqs += down
		downBound += bound
		t.Logf("round %d outage: %d attempts (%.1f per certificate) and %d requests (bound %d) in 6 hours over %d passes; live files untouched",
			round, attempts, float64(attempts)/float64(n), down, bound, passes)

		// 3. The CA is back and healthy (bad nonces still at 50%): every
		// certificate is renewed at its next retry, within the backoff cap.
		proxy.SetDown(false)
		proxy.SetRate(0)
		back := now
		passes, attempts, obtained = daemon(now.Add(24*time.Hour), allLive(first))
		if !allLive(first)() {
			t.Fatalf("round %d: not every certificate was renewed within a day of the CA's return (%d passes; last error: %v)", round, passes, lastErr)
		}
		total.obtained += obtained
		total.attempts += attempts
		t.Logf("round %d recovery: %d renewed in %d attempts over %d passes, %s after the CA came back",
			round, obtained, attempts, passes, now.Sub(back).Round(time.Minute))
		proxy.SetRate(0.15)
	}
	if t.Failed() {
		return
	}
	var injected int64
	for _, v := range proxy.Faults() {
		injected += v
	}
	t.Logf("fault summary: %d certificates x %d rounds: %d of %d issuances obtained (%d attempts outside outages); "+
		"%d faults injected %v, %d bad nonces from Pebble, %d requests in all; "+
		"%d requests during %d six-hour outages (bound %d, %d attempts); live certificates untouched during every outage",
		n, rounds, total.obtained, n*(1+rounds), total.attempts, injected, proxy.Faults(), proxy.BadNonces(), proxy.Requests(),
		downReqs, rounds, downBound, total.downAttempts)
}

func quietLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// watchPebble fails the test loudly, with Pebble's goroutine stacks in the
// CA output, when Pebble stops answering for a minute (the proxy's outages
// do not count: it is asked directly). Without it, a stalled CA would only
// show as a long fault run that never ends.
func watchPebble(t *testing.T, ca *testca.CA) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Second)
		defer tick.Stop()
		misses := 0
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if err := ca.Responsive(10 * time.Second); err != nil {
				if misses++; misses == 3 {
					t.Errorf("Pebble stopped answering for a minute (%v); its goroutines follow in the CA output", err)
					ca.Quit()
					return
				}
				continue
			}
			misses = 0
		}
	})
	return func() { close(done); wg.Wait() }
}
