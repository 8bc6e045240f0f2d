package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/watch/watchtest"
)

const day = 24 * time.Hour

type inbox struct {
	mu     sync.Mutex
	events []notify.Event
}

func (b *inbox) take() []notify.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.events
	b.events = nil
	return out
}

func startInbox(t *testing.T) (*inbox, string) {
	b := &inbox{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.events = append(b.events, e)
		b.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return b, srv.URL + "/hook"
}

func install(t *testing.T, st *store.Store, name string, notBefore, notAfter time.Time) string {
	t.Helper()
	full, key := certtest.Issue(t, certtest.Options{Names: []string{name + ".example.com"}, NotBefore: notBefore, NotAfter: notAfter})
	end := bytes.Index(full, []byte("-----END CERTIFICATE-----\n")) + len("-----END CERTIFICATE-----\n")
	v, err := st.Install(name, []string{name + ".example.com"}, store.Bundle{Cert: full[:end], Chain: full[end:], Key: key}, notBefore)
	if err != nil {
		t.Fatal(err)
	}
	return v.ID
}

// One daemon cycle's reporting, end to end: real certificates on disk, a
// real TLS endpoint to watch, a real webhook; the metrics and notifications
// say what is wrong, and "recovered" when it is fixed.
func TestCheckReportsEverything(t *testing.T) {
	now := time.Now()
	hooks, url := startInbox(t)
	srv := watchtest.Serve(t, certtest.Options{Names: []string{"cdn.example.net"}, NotBefore: now.Add(-360 * day), NotAfter: now.Add(5 * day)})
	dir := t.TempDir()
	src := fmt.Sprintf(`
storage { path = "state" }
acme { accept_terms = true }
certificate "fresh" {
  domains = ["fresh.example.com"]
  challenge "http" {}
}
certificate "failing" {
  domains = ["failing.example.com"]
  challenge "http" {}
}
certificate "pending" {
  domains = ["pending.example.com"]
  challenge "http" {}
  hook "reload" { command = ["false"] }
}
certificate "old" {
  domains = ["old.example.com"]
  challenge "http" {}
}
watch "megaphone" {
  endpoint    = %q
  server_name = "cdn.example.net"
  ca_bundle   = %q
}
notify "ops" {
  webhook = %q
  on      = ["all"]
}
metrics {}
`, srv.Endpoint, srv.CAFile, url)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.Storage.Path, 3)
	if err != nil {
		t.Fatal(err)
	}
	install(t, st, "fresh", now.Add(-day), now.Add(89*day))
	install(t, st, "failing", now.Add(-70*day), now.Add(20*day)) // due, not yet expiring
	st.SaveState("failing", store.State{LastResult: "failed", LastError: "acme: urn:ietf:params:acme:error:rateLimited", Failures: 3})
	install(t, st, "pending", now.Add(-day), now.Add(89*day))
	st.SaveState("pending", store.State{LastResult: "renewed", LastError: `hook "reload": exit status 1`})
	install(t, st, "old", now.Add(-85*day), now.Add(5*day)) // 5 days left: expiring, critical

	m := metrics.New("test")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rep, err := report.New(cfg, report.Options{Log: log, Metrics: m, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Log: log, Observer: rep})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	snap, err := check(ctx, rep, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Certificates) != 4 || len(snap.Watches) != 1 || snap.Watches[0].Health != plan.Critical || !snap.Complete {
		t.Fatalf("snapshot: %d certs, watches %+v", len(snap.Certificates), snap.Watches)
	}
	waitFlush(t, rep)

	type kv struct{ name, kind, severity string }
	var got []kv
	for _, e := range hooks.take() {
		got = append(got, kv{e.Name, string(e.Kind), e.Severity})
	}
	slices.SortFunc(got, func(a, b kv) int { return strings.Compare(a.name+a.kind, b.name+b.kind) })
	want := []kv{
		{"failing", "renewal_failed", "warning"},
		{"megaphone", "expiring", "critical"},
		{"old", "expiring", "critical"},
		{"pending", "hook_failed", "warning"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
	for _, w := range []string{"Renewal of failing failed (3 attempts in a row)", "problem=expiring severity=critical",
		"watch=megaphone endpoint=" + srv.Endpoint} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("logs lack %q:\n%s", w, logs.String())
		}
	}

	for _, c := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"renewer_certificate_ready", map[string]string{"name": "fresh"}, 1},
		{"renewer_certificate_ready", map[string]string{"name": "failing"}, 1}, // still valid and matching
		{"renewer_certificate_ready", map[string]string{"name": "pending"}, 0}, // hooks not applied
		{"renewer_certificate_consecutive_failures", map[string]string{"name": "failing"}, 3},
		{"renewer_watch_ready", map[string]string{"name": "megaphone", "endpoint": srv.Endpoint}, 0},
		{"renewer_watch_not_after_timestamp_seconds", map[string]string{"name": "megaphone", "endpoint": srv.Endpoint}, float64(now.Add(5 * day).Unix())},
		{"renewer_renewals_total", map[string]string{"name": "old", "result": "success"}, 0},
		{"renewer_hook_runs_total", map[string]string{"name": "pending", "hook": "reload", "result": "failure"}, 0},
	} {
		v, ok := metricstest.Value(t, m.Registry(), c.metric, c.labels)
		if !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.metric, c.labels, v, ok, c.want)
		}
	}
	if v, _ := metricstest.Value(t, m.Registry(), "renewer_last_check_timestamp_seconds", map[string]string{}); v < float64(now.Unix()) {
		t.Errorf("last check %v", v)
	}

	// A second check at once sends nothing new: deduplicated.
	if _, err := check(ctx, rep, a, nil); err != nil {
		t.Fatal(err)
	}
	waitFlush(t, rep)
	if got := hooks.take(); len(got) != 0 {
		t.Errorf("repeated at once: %+v", got)
	}

	// The failing certificate renews: counted, "renewed" sent (on = all),
	// and its failure is over ("recovered").
	rep.Finished(status.Result{Name: "failing", Action: status.Renewed, Serial: "beef", NotAfter: now.Add(90 * day), Decision: plan.Decision{Reason: plan.InWindow}})
	rep.Finished(status.Result{Name: "old", Action: status.Failed, Err: fmt.Errorf("boom")})
	rep.Finished(status.Result{Name: "fresh", Action: status.Failed, Err: context.Canceled, Interrupted: true}) // shutdown: not a failure
	// etcd (or the CA) not answering in time is a failure like any other.
	rep.Finished(status.Result{Name: "pending", Action: status.Failed, Err: fmt.Errorf("fleet: claim pending: %w", context.DeadlineExceeded)})
	install(t, st, "failing", now.Add(-time.Minute), now.Add(90*day))
	st.SaveState("failing", store.State{LastResult: "renewed"})
	rep.HookRan("pending", "reload", nil)
	if _, err := check(ctx, rep, a, []string{"failing"}); err != nil {
		t.Fatal(err)
	}
	waitFlush(t, rep)
	got = nil
	for _, e := range hooks.take() {
		got = append(got, kv{e.Name, string(e.Kind) + "/" + string(e.Problem), e.Severity})
	}
	slices.SortFunc(got, func(a, b kv) int { return strings.Compare(a.kind, b.kind) })
	if want := []kv{{"failing", "recovered/renewal_failed", "info"}, {"failing", "renewed/", "info"}}; !slices.Equal(got, want) {
		t.Errorf("after renewal: %v, want %v", got, want)
	}
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"name": "failing", "result": "success"}, 1},
		{map[string]string{"name": "old", "result": "failure"}, 1},
		{map[string]string{"name": "fresh", "result": "failure"}, 0},
		{map[string]string{"name": "pending", "result": "failure"}, 1},
	} {
		if v, _ := metricstest.Value(t, m.Registry(), "renewer_renewals_total", c.labels); v != c.want {
			t.Errorf("renewals_total%v = %v, want %v", c.labels, v, c.want)
		}
	}
	if v, _ := metricstest.Value(t, m.Registry(), "renewer_hook_runs_total", map[string]string{"name": "pending", "hook": "reload", "result": "success"}); v != 1 {
		t.Errorf("hook runs = %v", v)
	}
	// A partial check (renew NAME) keeps the other certificates' series and the watches'.
	if _, ok := metricstest.Value(t, m.Registry(), "renewer_certificate_ready", map[string]string{"name": "old"}); !ok {
		t.Error("a partial check removed other certificates' series")
	}
	if _, ok := metricstest.Value(t, m.Registry(), "renewer_watch_ready", map[string]string{"name": "megaphone", "endpoint": srv.Endpoint}); !ok {
		t.Error("a partial check removed the watches' series")
	}
	if err := rep.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(report.NotifyDir(cfg), "state.json")); err != nil {
		t.Errorf("dedup state not under the storage directory: %v", err)
	}
}

func waitFlush(t *testing.T, rep *report.Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustFacts(t *testing.T, full, key []byte) *certinfo.Facts {
	t.Helper()
	f, err := certinfo.Parse(full, key)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// With WatchEvery the daemon connects to watched endpoints at most that
// often; in between the last result is judged again at the current time.
func TestWatchEvery(t *testing.T) {
	start := time.Now()
	var mu sync.Mutex
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	at := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	srv := watchtest.Serve(t, certtest.Options{Names: []string{"cdn.example.net"},
		NotBefore: start.Add(-300 * day), NotAfter: start.Add(7*day + 10*time.Minute)})
	dir := t.TempDir()
	src := fmt.Sprintf("storage { path = \"state\" }\nacme {}\nwatch \"w\" {\n  endpoint = %q\n  server_name = \"cdn.example.net\"\n  ca_bundle = %q\n}\n",
		srv.Endpoint, srv.CAFile)
	file := filepath.Join(dir, "renewer.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.New(cfg, report.Options{Now: clock, WatchEvery: report.DefaultWatchEvery})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	check := func(step string, health plan.Health, reachable bool) {
		t.Helper()
		s, err := check(context.Background(), rep, a, nil)
		if err != nil || len(s.Watches) != 1 {
			t.Fatalf("%s: %v %+v", step, err, s)
		}
		if w := s.Watches[0]; w.Health != health || (w.Err == nil) != reachable {
			t.Errorf("%s: %s %q (err %v), want %s, reachable %v", step, w.Health, w.Problem, w.Err, health, reachable)
		}
	}
	check("first check: 7d10m left", plan.Warning, true)
	srv.Close()
	at(5 * time.Minute)
	check("5 minutes later: the last result", plan.Warning, true)
	at(14 * time.Minute)
	check("14 minutes later: under 7 days now, judged again", plan.Critical, true)
	at(16 * time.Minute)
	check("16 minutes later: connects again, and fails", plan.Warning, false)
}

// check reports what a pass over names (all when nil) would leave, as the
// agent's pass does.
func check(ctx context.Context, rep *report.Reporter, a *agent.Agent, names []string) (report.Snapshot, error) {
	certs, err := a.Select(names)
	if err != nil {
		return report.Snapshot{}, err
	}
	var views []status.View
	for _, c := range certs {
		views = append(views, a.Inspect(c))
	}
	return rep.Report(ctx, views, names == nil), nil
}

// Issue 14 #11: a 24-hour certificate's "expires in" reads in hours and
// minutes, not "0.8 days"; days stay for two days and more.
func TestExpiresInShortLifetime(t *testing.T) {
	now := time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	c := config.Certificate{Name: "short", Domains: []string{"short.example.com"}, WarnBefore: config.RenewBefore{Duration: 30 * day}}
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{19*time.Hour + 12*time.Minute, "expires in 19h 12m (2026-12-04 21:12 UTC)"},
		{40 * time.Minute, "expires in 40m (2026-12-04 02:40 UTC)"},
		{-(3*time.Hour + 5*time.Minute), "EXPIRED 3h 5m ago (2026-12-03 22:55 UTC)"},
		{5 * day, "expires in 5.0 days (2026-12-09)"},
	} {
		full, key := certtest.Issue(t, certtest.Options{Names: c.Domains, NotBefore: now.Add(-20 * day), NotAfter: now.Add(tc.left)})
		f := mustFacts(t, full, key)
		ob := report.CertificateProblems(status.Of(status.Inspection{Cert: c, Facts: f}, now))
		if len(ob.Problems) == 0 || !strings.Contains(ob.Problems[len(ob.Problems)-1].Message, tc.want) {
			t.Errorf("%s left: want %q in %+v", tc.left, tc.want, ob.Problems)
		}
	}
}
