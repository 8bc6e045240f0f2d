package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// setup writes a config for the test CA (certificates given as HCL) and
// returns an agent on it.
func setup(t *testing.T, ca *testca.CA, certs string) (*Agent, *config.Config) {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme {
  directory    = %q
  email        = "ops@example.test"
  accept_terms = true
  ca_bundle    = %q
}
%s`, ca.Directory, ca.CABundle, certs)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, src)
	}
	a, err := New(cfg, Options{
		DNSProviders: testProviders,
		Log:          slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, cfg
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func pass(t *testing.T, a *Agent, o PassOptions) []status.Result {
	t.Helper()
	res, err := a.RunOnce(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.HasPrefix(k, "RENEWER_") {
			env[k] = v
		}
	}
	return env
}

// The core path: first issuance with hooks, a pass with nothing due, then a
// forced renewal that swaps the live link and keeps the old version.
func TestIssueSkipForceRenew(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	envFile := filepath.Join(t.TempDir(), "hook.env")
	installDir := filepath.Join(t.TempDir(), "installed")
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["www.example.test", "example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { dir = %q }
  hook "record" {
    command = ["/bin/sh", "-c", "env > \"$OUT\""]
    env     = { OUT = %q }
  }
}`, ca.HTTPPort, installDir, envFile))

	res := pass(t, a, PassOptions{})
	if len(res) != 1 || res[0].Action != status.Obtained || !res[0].OK() {
		t.Fatalf("first pass: %+v", res)
	}
	first, err := a.Store().Live("www")
	if err != nil {
		t.Fatal(err)
	}
	env := readEnv(t, envFile)
	if env["RENEWER_NAME"] != "www" || env["RENEWER_DOMAINS"] != "www.example.test example.test" ||
		env["RENEWER_SERIAL"] != res[0].Serial || env["RENEWER_FULLCHAIN"] != first.Fullchain || env["RENEWER_KEY"] != first.Key {
		t.Errorf("hook environment: %v (live %+v)", env, first)
	}
	installed, err := certinfo.Load(filepath.Join(installDir, "fullchain.pem"), filepath.Join(installDir, "privkey.pem"))
	if err != nil || installed.Serial != res[0].Serial {
		t.Fatalf("install dir: %v %+v", err, installed)
	}

	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Skipped || res[0].Err != nil {
		t.Fatalf("second pass: %+v", res)
	}

	res = pass(t, a, PassOptions{Force: true})
	if res[0].Action != status.Renewed || !res[0].OK() {
		t.Fatalf("forced pass: %+v", res)
	}
	second, err := a.Store().Live("www")
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID {
		t.Fatalf("live link still points at %s", first.ID)
	}
	facts, err := certinfo.Load(second.Fullchain, second.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !facts.KeyMatches || facts.Serial != res[0].Serial || facts.Check(cfg.Certificates[0].Domains, a.now()) != nil {
		t.Errorf("new live version: %+v", facts)
	}
	if _, err := os.Stat(first.Fullchain); err != nil {
		t.Errorf("previous version gone: %v", err)
	}
	if got := readEnv(t, envFile)["RENEWER_SERIAL"]; got != facts.Serial {
		t.Errorf("hook saw serial %s, want %s", got, facts.Serial)
	}
	st, _ := a.Store().LoadState("www")
	if st.AppliedSerial != facts.Serial || st.InstalledSerial != facts.Serial || st.Failures != 0 {
		t.Errorf("state: %+v", st)
	}
}

// A failing issuance leaves the live certificate and key byte for byte, the
// other certificates keep going, and the error names the cause.
func TestFailureKeepsLiveAndKeepsGoing(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	deadWebroot := t.TempDir() // nothing serves it: the challenge fails
	a, _ := setup(t, ca, fmt.Sprintf(`
certificate "good" {
  domains = ["good.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}
certificate "bad" {
  domains = ["bad.example.test"]
  challenge "http" { webroot = %q }
}`, ca.HTTPPort, deadWebroot))

	res := pass(t, a, PassOptions{Names: []string{"good"}})
	if !res[0].OK() {
		t.Fatalf("good: %+v", res[0])
	}
	live, _ := a.Store().Live("good")
	before := snapshot(t, live.Cert, live.Key, live.Fullchain)

	// The CA goes away: the forced renewal of "good" fails, "bad" fails on
	// its own, and nothing installed changes.
	res = pass(t, a, PassOptions{Names: []string{"bad"}})
	if res[0].Action != status.Failed || res[0].Err == nil {
		t.Fatalf("bad: %+v", res[0])
	}
	ca.Stop()
	res = pass(t, a, PassOptions{Force: true})
	for _, r := range res {
		if r.Action != status.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), "obtain") {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if after := snapshot(t, live.Cert, live.Key, live.Fullchain); !bytes.Equal(before, after) {
		t.Error("live files changed after a failed renewal")
	}
	if now, _ := a.Store().Live("good"); now.ID != live.ID {
		t.Errorf("live link moved to %s", now.ID)
	}
	st, _ := a.Store().LoadState("good")
	if st.Failures != 1 || st.LastResult != string(status.Failed) || st.LastError == "" {
		t.Errorf("state after failure: %+v", st)
	}
}

func snapshot(t *testing.T, paths ...string) []byte {
	t.Helper()
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// A failing hook is reported, does not undo the install, and is retried on
// the next pass without a new certificate.
func TestHookFailureRetried(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	flag := filepath.Join(t.TempDir(), "fixed")
	a, _ := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["hooks.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  hook "reload" { command = ["/bin/sh", "-c", "test -e %s || { echo reload broken >&2; exit 1; }"] }
}`, ca.HTTPPort, flag))

	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Obtained || res[0].Err != nil || len(res[0].HookErrs) != 1 || !strings.Contains(res[0].HookErrs[0].Error(), "reload broken") {
		t.Fatalf("first pass: %+v", res[0])
	}
	serial := res[0].Serial
	if _, err := a.Store().Live("www"); err != nil {
		t.Fatalf("install undone by a failed hook: %v", err)
	}
	// Straight away it backs off; the state says until when.
	res = pass(t, a, PassOptions{})
	st, _ := a.Store().LoadState("www")
	if res[0].Action != status.Waiting || res[0].Err == nil || st.Failures != 1 || !st.NextAttempt.After(a.now()) {
		t.Fatalf("retry before the backoff passed: %+v, state %+v", res[0], st)
	}
	a.now = func() time.Time { return st.NextAttempt.Add(time.Second) }
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Applied || len(res[0].HookErrs) != 1 || res[0].Serial != serial {
		t.Fatalf("retry while still broken: %+v", res[0])
	}
	st2, _ := a.Store().LoadState("www")
	if st2.Failures != 2 || st2.NextAttempt.Sub(a.now()) <= st.NextAttempt.Sub(st.LastAttempt) {
		t.Errorf("backoff did not grow: first %+v, then %+v", st, st2)
	}
	a.now = func() time.Time { return st2.NextAttempt.Add(time.Second) }
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Applied || !res[0].OK() || res[0].Serial != serial {
		t.Fatalf("retry after fix: %+v", res[0])
	}
	res = pass(t, a, PassOptions{})
	if res[0].Action != status.Skipped {
		t.Fatalf("after applied: %+v", res[0])
	}
}

func TestDryRunInstallsNothing(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	marker := filepath.Join(t.TempDir(), "hook-ran")
	a, _ := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["dry.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  hook "touch" { command = ["touch", %q] }
}`, ca.HTTPPort, marker))
	res := pass(t, a, PassOptions{DryRun: true})
	if res[0].Action != status.DryRun || !res[0].OK() || res[0].Serial == "" {
		t.Fatalf("dry run: %+v", res[0])
	}
	if _, err := a.Store().Live("www"); err == nil {
		t.Error("dry run installed a certificate")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("dry run ran a hook")
	}
	if st, _ := a.Store().LoadState("www"); st.LastResult != "" {
		t.Errorf("dry run wrote state: %+v", st)
	}
}

func TestUnknownName(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, _ := setup(t, ca, `certificate "www" {
  domains = ["x.example.test"]
  challenge "http" { listen = "127.0.0.1:1" }
}`)
	if _, err := a.RunOnce(context.Background(), PassOptions{Names: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func openStore(cfg *config.Config) (*store.Store, error) {
	return store.Open(cfg.Storage.Path, cfg.Storage.KeepVersions)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitLive(t *testing.T, st *store.Store, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := st.Live(name); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not live after 60s", name)
}

func waitLog(t *testing.T, logs *syncLog, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(logs.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q after 60s", text)
}

// A failure's backoff lives in the state file: a restarted agent (a new
// process) keeps backing off until the stored time, wakes for it exactly,
// and then tries again with a longer backoff. The clock is fake; the CA is
// a dead port, so every attempt fails at once.
func TestRestartResumesBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "renewer.hcl")
	src := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = "https://127.0.0.1:%d/dir"
  accept_terms = true
}
daemon {
  retry_min = "1m"
  retry_max = "6h"
}
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, port, port)
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	start := func() *Agent {
		a, err := New(cfg, Options{Now: func() time.Time { return now }, Rand: func() float64 { return 0.5 }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}

	a := start()
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Failed {
		t.Fatalf("first attempt: %+v", res[0])
	}
	st, _ := a.Store().LoadState("www")
	if st.Failures != 1 || !st.NextAttempt.Equal(now.Add(time.Minute)) {
		t.Fatalf("after one failure: %+v", st)
	}

	// "Restart": a new agent on the same storage, 30s later.
	now = now.Add(30 * time.Second)
	a = start()
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Waiting || !strings.Contains(res[0].Err.Error(), "backing off until 2026-11-23T12:01:00Z") {
		t.Fatalf("restarted agent did not keep backing off: %+v", res[0])
	}
	if w := a.Wakes(); len(w) != 1 || !w[0].Exact || !w[0].At.Equal(now.Add(30*time.Second)) {
		t.Fatalf("wake-up after restart: %+v", w)
	}
	// At the stored time it tries again; the next backoff is twice as long.
	now = now.Add(30 * time.Second)
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Failed {
		t.Fatalf("attempt at the retry time: %+v", res[0])
	}
	st, _ = a.Store().LoadState("www")
	if st.Failures != 2 || !st.NextAttempt.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("after two failures: %+v", st)
	}
	// --force ignores the backoff.
	if res := pass(t, a, PassOptions{Force: true}); res[0].Action != status.Failed {
		t.Fatalf("forced attempt: %+v", res[0])
	}
}
