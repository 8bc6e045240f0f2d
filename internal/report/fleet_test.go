package report_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/metrics/metricstest"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/report"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// A fleet round's assessment becomes the fleet gauges and notifications
// about the subject "fleet": fleet_not_converged naming the node and its
// error, fleet_node_gone, then "recovered" once they are over; a round
// that could not read etcd changes nothing.
func TestFleetObserved(t *testing.T) {
	hooks, url := startInbox(t)
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "renewer.hcl"), fmt.Appendf(nil, `
storage { path = "state" }
acme { accept_terms = true }
notify "ops" {
  webhook = %q
  on      = ["all"]
}
`, url))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	m := metrics.New("test")
	m.SetClock(func() time.Time { return now })
	rep, err := report.New(cfg, report.Options{Metrics: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	v := &store.Published{Name: "www", Serial: "0b", NotAfter: now.Add(90 * day), Node: "edge-0", At: now.Add(-time.Minute)}
	good := func(node string, at time.Time) store.NodeReport {
		return store.NodeReport{Node: node, Serial: "0b", Applied: true, At: at, NotAfter: v.NotAfter}
	}
	broken := store.NodeReport{Node: "edge-2", Serial: "0b", At: now, NotAfter: v.NotAfter, Error: `reload "nginx": exit status 1`,
		Endpoints: []store.EndpointReport{{Endpoint: "10.0.0.3:443", Serial: "0a", NotAfter: now.Add(10 * day)}}}
	round := func(reports ...store.NodeReport) {
		k := status.AssessFleet(status.FleetInput{Name: "www", Version: v, Reports: reports, GoneAfter: 10 * time.Minute}, now)
		rep.FleetObserved(status.FleetSnapshot{Node: "edge-0", Checked: now, Certificates: []status.FleetCondition{k},
			Holders: map[string]string{"www": "edge-1"}})
		waitFlush(t, rep)
	}
	kinds := func(es []notify.Event) []string {
		var out []string
		for _, e := range es {
			if e.Subject != notify.Fleet || e.Name != "www" {
				t.Errorf("event about %s %s, want fleet www", e.Subject, e.Name)
			}
			out = append(out, string(e.Kind)+string(e.Problem))
		}
		slices.Sort(out)
		return out
	}

	round(good("edge-0", now), good("edge-1", now.Add(-11*time.Minute)), broken)
	es := hooks.take()
	if got := kinds(es); !slices.Equal(got, []string{"fleet_node_gone", "fleet_not_converged"}) {
		t.Fatalf("notifications: %v", got)
	}
	for _, e := range es {
		if e.Kind == notify.FleetNotConverged && (!strings.Contains(e.Message, "edge-2") || !strings.Contains(e.Error, `reload "nginx"`)) {
			t.Errorf("fleet_not_converged: %q, error %q", e.Message, e.Error)
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"renewer_fleet_converged", map[string]string{"name": "www"}, 0},
		{"renewer_fleet_unconverged_seconds", map[string]string{"name": "www"}, 60},
		{"renewer_fleet_node_current", map[string]string{"name": "www", "node": "edge-2"}, 0},
		{"renewer_fleet_served_not_after_timestamp_seconds", map[string]string{"name": "www", "node": "edge-2"}, float64(now.Add(10 * day).Unix())},
		{"renewer_fleet_node_gone", map[string]string{"node": "edge-1"}, 1},
		{"renewer_fleet_lock_holder", map[string]string{"name": "www", "node": "edge-1"}, 1},
	} {
		if got, ok := metricstest.Value(t, m.Registry(), c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}

	// etcd unreachable: nothing changes, nothing recovers.
	rep.FleetObserved(status.FleetSnapshot{Node: "edge-0", Checked: now, Err: errors.New("context deadline exceeded")})
	waitFlush(t, rep)
	if es := hooks.take(); len(es) != 0 {
		t.Errorf("a round without etcd notified %v", kinds(es))
	}
	if got, _ := metricstest.Value(t, m.Registry(), "renewer_fleet_converged", map[string]string{"name": "www"}); got != 0 {
		t.Errorf("a round without etcd changed renewer_fleet_converged to %v", got)
	}

	// Fixed, and edge-1 forgotten: both problems recover.
	round(good("edge-0", now), good("edge-2", now))
	if got := kinds(hooks.take()); !slices.Equal(got, []string{"recoveredfleet_node_gone", "recoveredfleet_not_converged"}) {
		t.Errorf("after the fix: %v", got)
	}
	if got, _ := metricstest.Value(t, m.Registry(), "renewer_fleet_unconverged_seconds", map[string]string{"name": "www"}); got != 0 {
		t.Errorf("renewer_fleet_unconverged_seconds after the fix: %v", got)
	}
}
