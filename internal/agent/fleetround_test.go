package agent

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// memShared is store.Shared in memory: what the fleet round reads and
// writes, counted.
type memShared struct {
	mu      sync.Mutex
	reports map[string][]store.NodeReport
	writes  int
	fail    error
}

func (m *memShared) Node() string { return "edge-0" }
func (m *memShared) Claim(context.Context, string) (store.Claim, bool, error) {
	return nil, false, errors.New("not here")
}
func (m *memShared) Latest(context.Context, string) (*store.Published, error) { return nil, nil }
func (m *memShared) Report(_ context.Context, name string, r store.NodeReport) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.writes++
	r.Node = "edge-0"
	m.reports[name] = []store.NodeReport{r}
	return nil
}
func (m *memShared) Reports(_ context.Context, name string) ([]store.NodeReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reports[name], nil
}
func (m *memShared) SyncAccount(context.Context, string, func() ([]byte, error), func([]byte) error, func(context.Context) error) error {
	return nil
}
func (m *memShared) Changes(context.Context) <-chan struct{}        { return nil }
func (m *memShared) PutToken(context.Context, string, string) error { return nil }
func (m *memShared) DeleteToken(context.Context, string) error      { return nil }
func (m *memShared) Token(string) (string, bool)                    { return "", false }
func (m *memShared) count() int                                     { m.mu.Lock(); defer m.mu.Unlock(); return m.writes }
func (m *memShared) setFail(err error)                              { m.mu.Lock(); defer m.mu.Unlock(); m.fail = err }

type fleetSeen struct{ snaps []status.FleetSnapshot }

func (f *fleetSeen) HookRan(string, string, error)                 {}
func (f *fleetSeen) Finished(status.Result)                        {}
func (f *fleetSeen) PassDone(context.Context, []status.View, bool) {}
func (f *fleetSeen) FleetObserved(s status.FleetSnapshot)          { f.snaps = append(f.snaps, s) }

// The fleet round writes this node's report when it changed or a quarter
// of node_gone_after has passed (the heartbeat), not at every round; it
// hands the observer every certificate's condition, or the error that
// kept it from reading the fleet.
func TestFleetRoundHeartbeat(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "renewer.hcl"), []byte(`
storage { path = "state" }
acme { accept_terms = true }
fleet {
  node            = "edge-0"
  key_file        = "fleet.key"
  node_gone_after = "4m"
  etcd { endpoints = ["http://127.0.0.1:1"] }
}
certificate "www" {
  domains = ["www.example.test"]
  challenge "http" { listen = ":80" }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	sh := &memShared{reports: map[string][]store.NodeReport{}}
	obs := &fleetSeen{}
	a, err := New(cfg, Options{Fleet: sh, Now: func() time.Time { return now }, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	for _, step := range []struct {
		after  time.Duration
		writes int
	}{{0, 1}, {30 * time.Second, 1}, {20 * time.Second, 1}, {15 * time.Second, 2}, {10 * time.Second, 2}} {
		now = now.Add(step.after)
		s := a.FleetRound(ctx)
		if s.Err != nil || len(s.Certificates) != 1 || s.Certificates[0].Name != "www" || s.Certificates[0].Live != 1 {
			t.Fatalf("round at +%s: %+v", step.after, s)
		}
		if n := sh.count(); n != step.writes {
			t.Errorf("after a round at +%s: %d reports written, want %d", step.after, n, step.writes)
		}
	}
	if len(obs.snaps) != 5 {
		t.Errorf("observer saw %d rounds, want 5", len(obs.snaps))
	}
	// A report that changes is written at once.
	if err := a.saveState("www", store.State{LastError: "boom", Failures: 1, LastResult: store.ResultFailed}); err != nil {
		t.Fatal(err)
	}
	a.FleetRound(ctx)
	if n := sh.count(); n != 3 || sh.reports["www"][0].Error != "boom" {
		t.Errorf("a changed report: %d writes, report %+v", n, sh.reports["www"])
	}
	// etcd failing: the observer hears of it.
	sh.setFail(errors.New("etcdserver: request timed out"))
	now = now.Add(time.Hour)
	if s := a.FleetRound(ctx); s.Err == nil || len(s.Certificates) != 0 || obs.snaps[len(obs.snaps)-1].Err == nil {
		t.Errorf("round with etcd failing: %+v", s)
	}
	for _, tc := range []struct{ every, want time.Duration }{{0, 30 * time.Second}, {10 * time.Second, 10 * time.Second}, {time.Hour, time.Minute}} {
		if got := a.FleetEvery(tc.every); got != tc.want {
			t.Errorf("FleetEvery(%s) = %s with node_gone_after 4m, want %s", tc.every, got, tc.want)
		}
	}
}
