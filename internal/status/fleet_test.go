package status_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// The fleet's convergence, one row per case: converged or not and since
// when, each node's state and error, the health and the notifications.
func TestAssessFleet(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const newS, oldS = "0a01", "0a00"
	newNA, oldNA := now.Add(60*day), now.Add(20*day)
	published := now.Add(-2 * time.Minute)
	version := &store.Published{Name: "www", Serial: newS, NotAfter: newNA, Node: "edge-0", At: published}
	ep := func(serial string, na time.Time) []store.EndpointReport {
		return []store.EndpointReport{{Endpoint: "127.0.0.1:443", Serial: serial, NotAfter: na}}
	}
	cur := func(node string) store.NodeReport {
		return store.NodeReport{Node: node, Serial: newS, Applied: true, Verified: true, At: now.Add(-10 * time.Second),
			NotAfter: newNA, Endpoints: ep(newS, newNA)}
	}
	with := func(r store.NodeReport, f func(*store.NodeReport)) store.NodeReport { f(&r); return r }
	reloadFailed := with(cur("edge-2"), func(r *store.NodeReport) {
		r.Applied, r.Verified, r.Error = false, false, `reload "nginx": exit status 1`
		r.Endpoints = ep(oldS, oldNA)
	})
	staleEndpoint := with(cur("edge-2"), func(r *store.NodeReport) { r.Endpoints = ep(oldS, oldNA) })
	oldInstalled := with(cur("edge-2"), func(r *store.NodeReport) {
		r.Serial, r.NotAfter, r.Applied, r.Endpoints = oldS, oldNA, true, ep(oldS, oldNA)
	})
	unreachable := with(cur("edge-2"), func(r *store.NodeReport) {
		r.Endpoints = []store.EndpointReport{{Endpoint: "127.0.0.1:443", Error: "connection refused"}}
	})
	silent := with(cur("edge-2"), func(r *store.NodeReport) { r.At = now.Add(-11 * time.Minute) })
	silentBehind := with(reloadFailed, func(r *store.NodeReport) { r.At = now.Add(-11 * time.Minute) })
	expired := with(oldInstalled, func(r *store.NodeReport) { r.Endpoints = ep(oldS, now.Add(-time.Hour)) })
	olderNode := store.NodeReport{Node: "edge-2", Serial: newS, Applied: true, Verified: true, At: now.Add(-time.Minute)} // no endpoints field

	type want struct {
		converged bool
		since     time.Time
		health    plan.Health
		live      int
		states    string   // node=state,...
		errs      []string // substrings of the named nodes' errors: node:substring
		problems  []string // kind:severity
		msg       string   // substring of the first problem's message
	}
	for _, tc := range []struct {
		name  string
		in    status.FleetInput
		after time.Duration // now moved on by this
		want  want
	}{
		{"every node current", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), cur("edge-1"), cur("edge-2")}},
			0, want{converged: true, health: plan.OK, live: 3, states: "edge-0=current,edge-1=current,edge-2=current"}},
		{"reload failed on one node: unconverged at once, naming it and its error",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), cur("edge-1"), reloadFailed}},
			0, want{since: published, health: plan.Warning, live: 3, states: "edge-0=current,edge-1=current,edge-2=behind",
				errs: []string{`edge-2:reload "nginx": exit status 1`}, problems: []string{"fleet_not_converged:warning"}, msg: "edge-2 does not serve it"}},
		{"endpoint still serves the old serial, within the grace: converging",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), staleEndpoint}},
			0, want{since: published, health: plan.OK, live: 2, states: "edge-0=current,edge-2=behind",
				errs: []string{"edge-2:127.0.0.1:443 serves serial 0a00, not the fleet's 0a01"}}},
		{"endpoint still serves the old serial past the grace",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), staleEndpoint}},
			status.ConvergeGrace, want{since: published, health: plan.Warning, live: 2, states: "edge-0=current,edge-2=behind",
				errs: []string{"edge-2:serves serial 0a00"}, problems: []string{"fleet_not_converged:warning"}, msg: "for 17m"}},
		{"a shorter grace", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), staleEndpoint}, Grace: time.Minute},
			0, want{since: published, health: plan.Warning, live: 2, states: "edge-0=current,edge-2=behind",
				problems: []string{"fleet_not_converged:warning"}}},
		{"old serial installed past the grace", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), oldInstalled}},
			time.Hour, want{since: published, health: plan.Warning, live: 2, states: "edge-0=current,edge-2=behind",
				errs: []string{"edge-2:installed serial 0a00, not the fleet's 0a01"}, problems: []string{"fleet_not_converged:warning"}}},
		{"endpoint unreachable", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), unreachable}},
			time.Hour, want{since: published, health: plan.Warning, live: 2, states: "edge-0=current,edge-2=behind",
				errs: []string{"edge-2:127.0.0.1:443: connection refused"}, problems: []string{"fleet_not_converged:warning"}}},
		{"a node silent past node_gone_after is gone; the others converged",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), cur("edge-1"), silent}, GoneAfter: 10 * time.Minute},
			0, want{converged: true, health: plan.Warning, live: 2, states: "edge-0=current,edge-1=current,edge-2=gone",
				errs: []string{"edge-2:no report for 11m"}, problems: []string{"fleet_node_gone:warning"}, msg: "Node edge-2 of the www fleet has not reported"}},
		{"a gone node does not hold convergence back",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), silentBehind}, GoneAfter: 10 * time.Minute},
			0, want{converged: true, health: plan.Warning, live: 1, states: "edge-0=current,edge-2=gone", problems: []string{"fleet_node_gone:warning"},
				errs: []string{`edge-2:no report for 11m (node_gone_after 10m); its last error: reload "nginx": exit status 1`}}},
		{"silent but within node_gone_after", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), silent}, GoneAfter: time.Hour},
			0, want{converged: true, health: plan.OK, live: 2, states: "edge-0=current,edge-2=current"}},
		{"every node gone", status.FleetInput{Version: version, Reports: []store.NodeReport{silent}, GoneAfter: 10 * time.Minute},
			0, want{since: published, health: plan.Warning, states: "edge-2=gone",
				problems: []string{"fleet_not_converged:warning", "fleet_node_gone:warning"}, msg: "no live node reports it"}},
		{"a live node serves an expired certificate", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), expired}},
			0, want{since: published, health: plan.Critical, live: 2, states: "edge-0=current,edge-2=behind",
				problems: []string{"fleet_not_converged:critical"}}},
		{"every node serves the fleet's expired version: the certificate's own status says so",
			status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0")}}, 61 * day,
			want{converged: true, health: plan.OK, live: 1, states: "edge-0=current"}},
		{"report of a node without endpoint details", status.FleetInput{Version: version, Reports: []store.NodeReport{cur("edge-0"), olderNode}},
			0, want{converged: true, health: plan.OK, live: 2, states: "edge-0=current,edge-2=current"}},
		{"nothing published yet", status.FleetInput{Reports: []store.NodeReport{oldInstalled}},
			time.Hour, want{health: plan.OK, live: 1, states: "edge-2=current"}},
		{"nothing at all", status.FleetInput{}, 0, want{health: plan.OK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Name = "www"
			k := status.AssessFleet(in, now.Add(tc.after))
			var states, kinds []string
			for _, n := range k.Nodes {
				states = append(states, n.Node+"="+string(n.State))
			}
			for _, p := range k.Problems {
				kinds = append(kinds, string(p.Kind)+":"+p.Severity)
			}
			if k.Converged != tc.want.converged || !k.UnconvergedSince.Equal(tc.want.since) || k.Health != tc.want.health ||
				k.Live != tc.want.live || strings.Join(states, ",") != tc.want.states || !slices.Equal(kinds, tc.want.problems) {
				t.Errorf("got converged %v since %v, health %s, live %d, nodes %s, problems %v\nwant converged %v since %v, health %s, live %d, nodes %s, problems %v",
					k.Converged, k.UnconvergedSince, k.Health, k.Live, strings.Join(states, ","), kinds,
					tc.want.converged, tc.want.since, tc.want.health, tc.want.live, tc.want.states, tc.want.problems)
			}
			for _, e := range tc.want.errs {
				node, sub, _ := strings.Cut(e, ":")
				i := slices.IndexFunc(k.Nodes, func(n status.FleetNode) bool { return n.Node == node })
				if i < 0 || !strings.Contains(k.Nodes[i].Error, sub) {
					t.Errorf("node %s: error %q, want it to contain %q", node, k.Nodes[min(max(i, 0), len(k.Nodes)-1)].Error, sub)
				}
			}
			if tc.want.msg != "" && (len(k.Problems) == 0 || !strings.Contains(k.Problems[0].Message, tc.want.msg)) {
				t.Errorf("problems %+v: want the first message to contain %q", k.Problems, tc.want.msg)
			}
			if tc.want.since.IsZero() != (k.UnconvergedFor(now.Add(tc.after)) == 0) {
				t.Errorf("UnconvergedFor = %s with since %v", k.UnconvergedFor(now.Add(tc.after)), k.UnconvergedSince)
			}
		})
	}
}

// What each node serves: the earliest expiry over its endpoints, else its
// installed certificate's; the first serial other than the fleet's.
func TestAssessFleetServed(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	v := &store.Published{Serial: "02", At: now}
	k := status.AssessFleet(status.FleetInput{Name: "www", Version: v, Reports: []store.NodeReport{
		{Node: "a", Serial: "02", Applied: true, At: now, NotAfter: now.Add(90 * day), Endpoints: []store.EndpointReport{
			{Endpoint: "e1", Serial: "02", NotAfter: now.Add(90 * day)}, {Endpoint: "e2", Serial: "01", NotAfter: now.Add(5 * day)}}},
		{Node: "b", Serial: "02", Applied: true, At: now, NotAfter: now.Add(90 * day)},
		{Node: "c", Serial: "02", Applied: true, At: now, NotAfter: now.Add(90 * day), Endpoints: []store.EndpointReport{
			{Endpoint: "e1", Error: "refused"}}},
	}}, now)
	want := []struct {
		served   string
		notAfter time.Time
		state    status.NodeState
	}{{"01", now.Add(5 * day), status.NodeBehind}, {"", now.Add(90 * day), status.NodeCurrent}, {"", now.Add(90 * day), status.NodeBehind}}
	for i, n := range k.Nodes {
		if n.Served != want[i].served || !n.ServedNotAfter.Equal(want[i].notAfter) || n.State != want[i].state {
			t.Errorf("node %s: served %q until %v, %s; want %q until %v, %s", n.Node, n.Served, n.ServedNotAfter, n.State,
				want[i].served, want[i].notAfter, want[i].state)
		}
	}
}
