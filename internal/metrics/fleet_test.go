package metrics_test

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/renewer/renewer/internal/metrics"
)

// series is name{labels} -> value of a scrape, labels in the scrape's order.
func series(fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := ""
		for _, l := range m.GetLabel() {
			key += l.GetName() + "=" + l.GetValue() + ","
		}
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out[key] = v
	}
	return out
}

// The fleet gauges over HTTP: nodes by state, gone nodes, each node's
// served expiry and whether it serves the fleet's version, the lock
// holder, the unconverged seconds computed at each scrape (0 once
// converged), and the etcd error counter; a certificate or node no longer
// seen leaves no series behind.
func TestFleetMetrics(t *testing.T) {
	m := metrics.New("test")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	m.SetClock(func() time.Time { return now })
	base := serve(t, m)
	published, na := now.Add(-90*time.Second), now.Add(60*24*time.Hour)
	m.SetFleet([]metrics.FleetCertificate{
		{Name: "www", Published: published, Holder: "edge-0", Nodes: []metrics.FleetNode{
			{Node: "edge-0", ServedNotAfter: na, Current: true, Reported: now},
			{Node: "edge-1", ServedNotAfter: na.Add(-30 * 24 * time.Hour), Reported: now},
			{Node: "edge-2", Gone: true, Reported: now.Add(-time.Hour)},
		}},
		{Name: "api", Published: published, Converged: true, Nodes: []metrics.FleetNode{
			{Node: "edge-0", Current: true, Reported: now}, {Node: "edge-2", Gone: true, Reported: now.Add(-time.Hour)},
		}},
	})
	m.EtcdRequestError()
	m.EtcdRequestError()
	fams := scrape(t, base)
	for _, tc := range []struct {
		name string
		want map[string]float64
	}{
		{"renewer_fleet_nodes", map[string]float64{"state=live,": 2, "state=gone,": 1}},
		{"renewer_fleet_node_gone", map[string]float64{"node=edge-0,": 0, "node=edge-1,": 0, "node=edge-2,": 1}},
		{"renewer_fleet_node_last_report_timestamp_seconds", map[string]float64{"node=edge-0,": float64(now.Unix()),
			"node=edge-1,": float64(now.Unix()), "node=edge-2,": float64(now.Add(-time.Hour).Unix())}},
		{"renewer_fleet_converged", map[string]float64{"name=www,": 0, "name=api,": 1}},
		{"renewer_fleet_version_published_timestamp_seconds", map[string]float64{"name=www,": float64(published.Unix()), "name=api,": float64(published.Unix())}},
		{"renewer_fleet_served_not_after_timestamp_seconds", map[string]float64{"name=www,node=edge-0,": float64(na.Unix()),
			"name=www,node=edge-1,": float64(na.Add(-30 * 24 * time.Hour).Unix())}},
		{"renewer_fleet_node_current", map[string]float64{"name=www,node=edge-0,": 1, "name=www,node=edge-1,": 0, "name=api,node=edge-0,": 1}},
		{"renewer_fleet_lock_holder", map[string]float64{"name=www,node=edge-0,": 1}},
		{"renewer_fleet_unconverged_seconds", map[string]float64{"name=www,": 90, "name=api,": 0}},
		{"renewer_fleet_etcd_request_errors_total", map[string]float64{"": 2}},
	} {
		if got := series(fams, tc.name); !equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	now = now.Add(time.Minute) // no new round: the scrape computes it
	if got := series(scrape(t, base), "renewer_fleet_unconverged_seconds"); got["name=www,"] != 150 {
		t.Errorf("a minute later: %v, want www at 150", got)
	}
	// The next round: www converged, api gone from the config, edge-2 forgotten.
	m.SetFleet([]metrics.FleetCertificate{{Name: "www", Published: published, Converged: true, Nodes: []metrics.FleetNode{
		{Node: "edge-0", ServedNotAfter: na, Current: true, Reported: now}, {Node: "edge-1", ServedNotAfter: na, Current: true, Reported: now},
	}}})
	fams = scrape(t, base)
	for name, want := range map[string]map[string]float64{
		"renewer_fleet_unconverged_seconds": {"name=www,": 0},
		"renewer_fleet_converged":           {"name=www,": 1},
		"renewer_fleet_nodes":               {"state=live,": 2, "state=gone,": 0},
		"renewer_fleet_node_gone":           {"node=edge-0,": 0, "node=edge-1,": 0},
		"renewer_fleet_lock_holder":         {},
	} {
		if got := series(fams, name); !equal(got, want) {
			t.Errorf("after the next round: %s = %v, want %v", name, got, want)
		}
	}
}

func equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
