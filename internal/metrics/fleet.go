package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fleet mode's metrics: what one node sees of the whole fleet.

// FleetCertificate is what the fleet gauges show for one certificate.
type FleetCertificate struct {
	Name      string
	Published time.Time // when the fleet's version was published; zero when none is
	Converged bool      // every live node serves the fleet's version
	Holder    string    // the node holding its renewal lock; "" when none does
	Nodes     []FleetNode
}

// FleetNode is one node's part in a FleetCertificate.
type FleetNode struct {
	Node           string
	ServedNotAfter time.Time // expiry of what it serves; zero when unknown
	Current        bool      // it serves the fleet's version
	Gone           bool      // it has not reported for node_gone_after
	Reported       time.Time // its last report
}

type fleetMetrics struct {
	nodes, nodeGone, nodeReported           *prometheus.GaugeVec
	converged, published                    *prometheus.GaugeVec
	servedNotAfter, nodeCurrent, lockHolder *prometheus.GaugeVec
	etcdErrors                              prometheus.Counter
	unconverged                             *prometheus.Desc
}

func newFleetMetrics() fleetMetrics {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	return fleetMetrics{
		nodes: gauge("renewer_fleet_nodes",
			"Fleet nodes seen in the reports of the configured certificates, by state: live, or gone (no report for node_gone_after).", "state"),
		nodeGone: gauge("renewer_fleet_node_gone",
			"1 when a fleet node has not reported for node_gone_after; else 0.", "node"),
		nodeReported: gauge("renewer_fleet_node_last_report_timestamp_seconds",
			"When a fleet node last reported, in seconds since the epoch.", "node"),
		converged: gauge("renewer_fleet_converged",
			"1 when every live node serves the fleet's version of the certificate (installed, deployed, verified on its own endpoints); else 0.", "name"),
		published: gauge("renewer_fleet_version_published_timestamp_seconds",
			"When the fleet's version of the certificate was published, in seconds since the epoch.", "name"),
		servedNotAfter: gauge("renewer_fleet_served_not_after_timestamp_seconds",
			"When the certificate a fleet node serves expires (the earliest over its verify endpoints, else its installed one), in seconds since the epoch.", "name", "node"),
		nodeCurrent: gauge("renewer_fleet_node_current",
			"1 when a fleet node serves the fleet's version of the certificate; else 0 (gone nodes are left out).", "name", "node"),
		lockHolder: gauge("renewer_fleet_lock_holder",
			"1 for the node holding the certificate's renewal lock (absent while nobody holds it).", "name", "node"),
		etcdErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "renewer_fleet_etcd_request_errors_total",
			Help: "Failed etcd requests (each attempt; a caller that gave up is not counted)."}),
		unconverged: prometheus.NewDesc("renewer_fleet_unconverged_seconds",
			"Seconds since the fleet's version of the certificate was published, while the fleet has not converged on it; 0 once it has.",
			[]string{"name"}, nil),
	}
}

func (f *fleetMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.nodes, f.nodeGone, f.nodeReported, f.converged, f.published, f.servedNotAfter,
		f.nodeCurrent, f.lockHolder, f.etcdErrors}
}

// unconvergedCollector computes renewer_fleet_unconverged_seconds at each
// scrape, from the last fleet round's view: the value grows between rounds.
type unconvergedCollector struct{ m *Metrics }

func (c unconvergedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.fleet.unconverged }

func (c unconvergedCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	now := c.m.now()
	for _, fc := range c.m.fleetCerts {
		v := 0.0
		if !fc.Converged && !fc.Published.IsZero() {
			v = max(now.Sub(fc.Published).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.m.fleet.unconverged, prometheus.GaugeValue, v, fc.Name)
	}
}

// SetFleet sets the fleet gauges to certs, every configured certificate
// as the last fleet round saw it; series of anything else are removed.
func (m *Metrics) SetFleet(certs []FleetCertificate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &m.fleet
	for _, v := range []*prometheus.GaugeVec{f.nodes, f.nodeGone, f.nodeReported, f.converged, f.published,
		f.servedNotAfter, f.nodeCurrent, f.lockHolder} {
		v.Reset()
	}
	m.fleetCerts = map[string]FleetCertificate{}
	live, reported := map[string]bool{}, map[string]time.Time{}
	for _, c := range certs {
		m.fleetCerts[c.Name] = c
		f.converged.WithLabelValues(c.Name).Set(boolValue(c.Converged))
		if !c.Published.IsZero() {
			f.published.WithLabelValues(c.Name).Set(seconds(c.Published))
		}
		if c.Holder != "" {
			f.lockHolder.WithLabelValues(c.Name, c.Holder).Set(1)
		}
		for _, n := range c.Nodes {
			live[n.Node] = live[n.Node] || !n.Gone
			if n.Reported.After(reported[n.Node]) {
				reported[n.Node] = n.Reported
			}
			if n.Gone {
				continue
			}
			f.nodeCurrent.WithLabelValues(c.Name, n.Node).Set(boolValue(n.Current))
			if !n.ServedNotAfter.IsZero() {
				f.servedNotAfter.WithLabelValues(c.Name, n.Node).Set(seconds(n.ServedNotAfter))
			}
		}
	}
	counts := map[string]float64{"live": 0, "gone": 0}
	for node, l := range live {
		if l {
			counts["live"]++
		} else {
			counts["gone"]++
		}
		f.nodeGone.WithLabelValues(node).Set(boolValue(!l))
		f.nodeReported.WithLabelValues(node).Set(seconds(reported[node]))
	}
	for state, n := range counts {
		f.nodes.WithLabelValues(state).Set(n)
	}
}

// EtcdRequestError counts one failed etcd request (the fleet backend's
// request-error hook: fleet.Backend.SetRequestErrorHook).
func (m *Metrics) EtcdRequestError() { m.fleet.etcdErrors.Inc() }
