package status

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/store"
)

// ConvergeGrace is how long a fleet may take to converge on a new version
// before status warns, as long as no node reports an error (a node that
// does is a warning at once). The example alert rule waits as long.
const ConvergeGrace = 15 * time.Minute

// FleetInput is what the fleet knows of one certificate: the version it
// published and every node's report (store.Shared's Latest and Reports).
type FleetInput struct {
	Name string
	// Version is the fleet's version (its Bundle is not read); nil when
	// none is published.
	Version *store.Published
	Reports []store.NodeReport
	// GoneAfter is node_gone_after: a node whose report is older is gone.
	GoneAfter time.Duration
	// Grace: unconverged for less than this, with no node reporting an
	// error, is converging (ok). Zero means ConvergeGrace.
	Grace time.Duration
}

// NodeState is where one node stands with the fleet's version.
type NodeState string

// Node states.
const (
	// NodeCurrent: it installed the fleet's version, deployed it, and its
	// verify endpoints serve it.
	NodeCurrent NodeState = "current"
	// NodeBehind: it does not (yet) serve the fleet's version.
	NodeBehind NodeState = "behind"
	// NodeGone: it has not reported for GoneAfter; it no longer counts.
	NodeGone NodeState = "gone"
)

// FleetNode is one node's part in a FleetCondition.
type FleetNode struct {
	Node     string
	State    NodeState
	Serial   string    // installed on the node
	Applied  bool      // its deploy steps all succeeded for Serial
	Verified bool      // its verify endpoints served Serial at its last deploy
	Reported time.Time // its last report
	// Served is the serial its verify endpoints serve: the first one that
	// differs from the fleet's, else the fleet's; "" when an endpoint could
	// not be reached, or it has no verify endpoint (then Serial stands).
	Served string
	// ServedNotAfter is the earliest expiry of what its endpoints serve
	// (the installed certificate's when it has no endpoint); zero when
	// unknown.
	ServedNotAfter time.Time
	Endpoints      []store.EndpointReport
	// Error is the node's own error (a failed hook, reload, verification
	// or renewal), else why it is behind or gone.
	Error string
}

// FleetCondition is the one decision about a certificate across the fleet.
type FleetCondition struct {
	Name        string
	Serial      string    // the fleet's version; "" when none is published
	NotAfter    time.Time // of the fleet's version
	Published   time.Time // when the fleet's version was published
	PublishedBy string    // the node that obtained it
	// Converged: every live node (at least one) serves the fleet's
	// version: installed, deployed, and its verify endpoints serve it.
	Converged bool
	// UnconvergedSince is when the fleet's version was published, while it
	// is not converged; zero when converged or nothing is published.
	UnconvergedSince time.Time
	// Health: warning while a live node behind reports an error, when the
	// fleet has not converged within Grace of the publication, or when a
	// node is gone; critical when a live node behind serves an expired
	// certificate.
	Health   plan.Health
	Nodes    []FleetNode // by node name
	Live     int         // nodes not gone
	Gone     []string    // names of the gone nodes
	Problems []notify.Event
}

// Behind names the live nodes that do not serve the fleet's version.
func (k FleetCondition) Behind() []FleetNode {
	var out []FleetNode
	for _, n := range k.Nodes {
		if n.State == NodeBehind {
			out = append(out, n)
		}
	}
	return out
}

// UnconvergedFor is how long the fleet has not converged on its version at
// now; zero when it has (or nothing is published).
func (k FleetCondition) UnconvergedFor(now time.Time) time.Duration {
	if k.UnconvergedSince.IsZero() {
		return 0
	}
	return max(now.Sub(k.UnconvergedSince), 0)
}

// AssessFleet decides, at now, whether the fleet converged on its version
// of one certificate, where each node stands, the health that calls for
// and what to notify (fleet_not_converged, fleet_node_gone). It is pure:
// status, metrics and notifications all read it.
func AssessFleet(in FleetInput, now time.Time) FleetCondition {
	grace := in.Grace
	if grace <= 0 {
		grace = ConvergeGrace
	}
	k := FleetCondition{Name: in.Name, Health: plan.OK}
	v := in.Version
	if v != nil {
		k.Serial, k.NotAfter, k.Published, k.PublishedBy = v.Serial, v.NotAfter, v.At, v.Node
	}
	reports := slices.Clone(in.Reports)
	slices.SortFunc(reports, func(a, b store.NodeReport) int { return strings.Compare(a.Node, b.Node) })
	errored, expired := false, false
	for _, r := range reports {
		n := FleetNode{Node: r.Node, Serial: r.Serial, Applied: r.Applied, Verified: r.Verified, Reported: r.At,
			Endpoints: r.Endpoints, Error: r.Error, ServedNotAfter: servedNotAfter(r), Served: servedOf(r, k.Serial)}
		switch {
		case IsGone(r.At, now, in.GoneAfter):
			n.State = NodeGone
			gone := fmt.Sprintf("no report for %s (node_gone_after %s)", roundAge(now.Sub(r.At)), roundAge(in.GoneAfter))
			if n.Error != "" {
				gone += "; its last error: " + n.Error
			}
			n.Error = gone
			k.Gone = append(k.Gone, r.Node)
			k.Nodes = append(k.Nodes, n)
			continue
		case v != nil && current(r, v.Serial):
			n.State = NodeCurrent
		case v != nil:
			n.State = NodeBehind
			if n.Error != "" {
				errored = true
			} else {
				n.Error = behindReason(r, v.Serial)
			}
			if !n.ServedNotAfter.IsZero() && !now.Before(n.ServedNotAfter) {
				expired = true // the outage of one balancer of two
			}
		default: // nothing published: nothing to be behind
			n.State = NodeCurrent
		}
		k.Live++
		k.Nodes = append(k.Nodes, n)
	}
	if v != nil {
		k.Converged = k.Live > 0 && len(k.Behind()) == 0
		if !k.Converged {
			k.UnconvergedSince = v.At
		}
	}
	switch {
	case expired:
		k.Health = plan.Critical
	case v != nil && !k.Converged && (errored || k.Live == 0 || now.Sub(v.At) >= grace), len(k.Gone) > 0:
		k.Health = plan.Warning
	}
	k.Problems = fleetProblems(k, now)
	return k
}

// servedNotAfter is the earliest expiry of what r's endpoints serve, or,
// when none could be read (or it has none), of its installed certificate.
func servedNotAfter(r store.NodeReport) time.Time {
	var t time.Time
	for _, e := range r.Endpoints {
		if !e.NotAfter.IsZero() && (t.IsZero() || e.NotAfter.Before(t)) {
			t = e.NotAfter
		}
	}
	if t.IsZero() {
		return r.NotAfter
	}
	return t
}

// current: r installed serial, deployed it, and every endpoint serves it.
func current(r store.NodeReport, serial string) bool {
	if r.Serial != serial || !r.Applied {
		return false
	}
	for _, e := range r.Endpoints {
		if e.Serial != serial {
			return false
		}
	}
	return true
}

// servedOf is what r's endpoints serve: the first serial other than want,
// "" when one could not be checked, else want (every endpoint serves it).
func servedOf(r store.NodeReport, want string) string {
	if len(r.Endpoints) == 0 {
		return ""
	}
	for _, e := range r.Endpoints {
		if e.Serial == "" || e.Serial != want {
			return e.Serial
		}
	}
	return want
}

// behindReason says why a node without an error of its own is behind.
func behindReason(r store.NodeReport, serial string) string {
	switch {
	case r.Serial != serial:
		return fmt.Sprintf("installed serial %s, not the fleet's %s", or(r.Serial, "none"), serial)
	case !r.Applied:
		return "installed, not deployed yet"
	}
	for _, e := range r.Endpoints {
		switch {
		case e.Error != "":
			return fmt.Sprintf("%s: %s", e.Endpoint, e.Error)
		case e.Serial != serial:
			return fmt.Sprintf("%s serves serial %s, not the fleet's %s", e.Endpoint, e.Serial, serial)
		}
	}
	return ""
}

func fleetProblems(k FleetCondition, now time.Time) []notify.Event {
	var out []notify.Event
	severity := notify.Warning
	if k.Health == plan.Critical {
		severity = notify.Critical
	}
	if behind := k.Behind(); k.Serial != "" && !k.Converged && k.Health != plan.OK && (len(behind) > 0 || k.Live == 0) {
		var names, errs []string
		for _, n := range behind {
			names = append(names, n.Node)
			errs = append(errs, n.Node+": "+n.Error)
		}
		msg := fmt.Sprintf("The fleet has not converged on %s serial %s for %s: no live node reports it.",
			k.Name, k.Serial, roundAge(now.Sub(k.Published)))
		if len(behind) > 0 {
			msg = fmt.Sprintf("The fleet has not converged on %s serial %s for %s: %s %s not serve it.",
				k.Name, k.Serial, roundAge(now.Sub(k.Published)), strings.Join(names, ", "), plural2(len(names), "does", "do"))
		}
		out = append(out, notify.Event{Kind: notify.FleetNotConverged, Severity: severity, Serial: k.Serial, NotAfter: k.NotAfter,
			Message: msg, Error: strings.Join(errs, "; ")})
	}
	if len(k.Gone) > 0 {
		out = append(out, notify.Event{Kind: notify.FleetNodeGone, Severity: notify.Warning, Serial: k.Serial, NotAfter: k.NotAfter,
			Message: fmt.Sprintf("%s of the %s fleet %s not reported for longer than node_gone_after; `renewer fleet forget NODE` if %s left.",
				plural2(len(k.Gone), "Node", "Nodes")+" "+strings.Join(k.Gone, ", "), k.Name, plural2(len(k.Gone), "has", "have"),
				plural2(len(k.Gone), "it", "they"))})
	}
	return out
}

// roundAge is a duration for people: "42s", "3m10s", "2h5m".
func roundAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FleetSnapshot is one look at the whole fleet from one node: what the
// daemon's fleet round hands the report stage (metrics, notifications).
type FleetSnapshot struct {
	Node         string // this node
	Checked      time.Time
	Certificates []FleetCondition  // each configured certificate; empty when Err
	Holders      map[string]string // certificate -> the node holding its renewal lock
	Err          error             // the fleet could not be read
}
