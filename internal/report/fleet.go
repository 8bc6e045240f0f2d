package report

import (
	"strings"

	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/status"
)

// FleetObserved implements agent.FleetObserver: it sets the fleet gauges
// from the daemon's fleet round and hands each certificate's fleet
// problems (status.AssessFleet's fleet_not_converged, fleet_node_gone) to
// the notifier, about the subject "fleet". A round that could not read the
// fleet changes nothing: the gauges keep the last view (and the
// unconverged seconds keep growing), and no "recovered" is sent.
func (r *Reporter) FleetObserved(s status.FleetSnapshot) {
	if s.Err != nil {
		return
	}
	var certs []metrics.FleetCertificate
	var obs []notify.Observation
	for _, k := range s.Certificates {
		certs = append(certs, FleetMetrics(k, s.Holders[k.Name]))
		obs = append(obs, FleetProblems(k))
		r.logFleet(k)
	}
	if r.metrics != nil {
		r.metrics.SetFleet(certs)
	}
	if r.notify != nil {
		r.notify.Observe(obs)
	}
}

// logFleet logs a certificate's fleet problems when they change (a round
// runs every 30 seconds): another kind, version, node or error, not the
// time that passed.
func (r *Reporter) logFleet(k status.FleetCondition) {
	msgs := append([]string{k.Serial}, k.Gone...)
	for _, n := range k.Behind() {
		msgs = append(msgs, n.Node)
	}
	for _, p := range k.Problems {
		msgs = append(msgs, string(p.Kind)+" "+p.Severity+" "+p.Error)
	}
	key := strings.Join(msgs, "\n")
	r.mu.Lock()
	if r.fleetLogged == nil {
		r.fleetLogged = map[string]string{}
	}
	same := r.fleetLogged[k.Name] == key
	r.fleetLogged[k.Name] = key
	r.mu.Unlock()
	if same {
		return
	}
	if k.Converged && len(k.Problems) == 0 {
		r.log.Info("fleet converged", "cert", k.Name, "serial", k.Serial, "nodes", k.Live)
	}
	for _, p := range k.Problems {
		r.log.Warn(p.Message, "cert", k.Name, "problem", string(p.Kind), "severity", p.Severity, "err", p.Error)
	}
}

// FleetMetrics is what the fleet gauges show of one certificate.
func FleetMetrics(k status.FleetCondition, holder string) metrics.FleetCertificate {
	m := metrics.FleetCertificate{Name: k.Name, Published: k.Published, Converged: k.Converged, Holder: holder}
	for _, n := range k.Nodes {
		m.Nodes = append(m.Nodes, metrics.FleetNode{Node: n.Node, ServedNotAfter: n.ServedNotAfter,
			Current: n.State == status.NodeCurrent, Gone: n.State == status.NodeGone, Reported: n.Reported})
	}
	return m
}

// FleetProblems is what to notify of a certificate across the fleet.
func FleetProblems(k status.FleetCondition) notify.Observation {
	return notify.Observation{
		About:    notify.Event{Subject: notify.Fleet, Name: k.Name, Serial: k.Serial, NotAfter: k.NotAfter},
		Problems: k.Problems,
	}
}
