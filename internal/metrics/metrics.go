// Package metrics holds renewer's Prometheus collectors and serves them over
// HTTP with /healthz. Names follow cert-manager's where they fit
// (certmanager_certificate_expiration_timestamp_seconds and friends),
// prefixed renewer_. The package knows nothing of the agent: callers set
// plain values (see package report).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Result label values of the counters.
const (
	Success = "success"
	Failure = "failure"
)

// Metrics is one process's collectors. Create it once and keep it across
// configuration reloads: counters then survive a reload, and
// SetCertificates and SetWatches drop the series of removed names.
type Metrics struct {
	reg *prometheus.Registry

	notAfter, notBefore, renewal, ready, failures *prometheus.GaugeVec
	renewals, hookRuns                            *prometheus.CounterVec
	watchNotAfter, watchReady                     *prometheus.GaugeVec
	checked                                       prometheus.Gauge

	fleet fleetMetrics // fleet.go

	mu         sync.Mutex
	certs      map[string]Certificate      // the last set, by name
	watches    map[string]Watch            // by name
	fleetCerts map[string]FleetCertificate // the last fleet round's, by name
	now        func() time.Time
}

// New registers every collector, the Go runtime's and the process's
// included, and renewer_build_info{version} = 1.
func New(version string) *Metrics {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		notAfter: gauge("renewer_certificate_not_after_timestamp_seconds",
			"When the live certificate expires (its NotAfter), in seconds since the epoch.", "name"),
		notBefore: gauge("renewer_certificate_not_before_timestamp_seconds",
			"When the live certificate became valid (its NotBefore), in seconds since the epoch.", "name"),
		renewal: gauge("renewer_certificate_renewal_timestamp_seconds",
			"When the certificate is next due for renewal (now or past when it is due), in seconds since the epoch.", "name"),
		ready: gauge("renewer_certificate_ready",
			"1 when the live certificate is valid, matches the config and its hooks have all succeeded; else 0.", "name"),
		failures: gauge("renewer_certificate_consecutive_failures",
			"Failed renewal or deploy attempts since the last success.", "name"),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "renewer_renewals_total",
			Help: "Renewal attempts (first issuance included) by result: success or failure."}, []string{"name", "result"}),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "renewer_hook_runs_total",
			Help: "Hook runs by result: success or failure."}, []string{"name", "hook", "result"}),
		watchNotAfter: gauge("renewer_watch_not_after_timestamp_seconds",
			"When the certificate a watched endpoint serves expires, in seconds since the epoch; absent while the endpoint cannot be checked.", "name", "endpoint"),
		watchReady: gauge("renewer_watch_ready",
			"1 when the watched endpoint was checked, its certificate verifies and is not within warn_before of expiry; else 0.", "name", "endpoint"),
		checked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "renewer_last_check_timestamp_seconds",
			Help: "When renewer last checked its certificates and watches, in seconds since the epoch."}),
		certs:   map[string]Certificate{},
		watches: map[string]Watch{},
		fleet:   newFleetMetrics(),
		now:     time.Now,
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "renewer_build_info",
		Help:        "Always 1; the labels say which renewer this is.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(m.notAfter, m.notBefore, m.renewal, m.ready, m.failures, m.renewals, m.hookRuns,
		m.watchNotAfter, m.watchReady, m.checked, build, overdue{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(append(m.fleet.collectors(), unconvergedCollector{m})...)
	return m
}

// SetClock replaces the clock of the values computed at each scrape
// (renewer_certificate_ari_overdue_seconds, renewer_fleet_unconverged_seconds); for tests.
func (m *Metrics) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// overdueDesc is renewer_certificate_ari_overdue_seconds: computed at each
// scrape from Certificate.ARIOverdueSince, so it grows between passes.
var overdueDesc = prometheus.NewDesc("renewer_certificate_ari_overdue_seconds",
	"Seconds since the CA's renewal window (ARI) for the live certificate opened, while renewer's moment in it has come (or the window is over) and the certificate is not replaced yet; 0 otherwise.",
	[]string{"name"}, nil)

type overdue struct{ m *Metrics }

func (o overdue) Describe(ch chan<- *prometheus.Desc) { ch <- overdueDesc }

func (o overdue) Collect(ch chan<- prometheus.Metric) {
	o.m.mu.Lock()
	defer o.m.mu.Unlock()
	now := o.m.now()
	for name, c := range o.m.certs {
		v := 0.0
		if !c.ARIOverdueSince.IsZero() {
			v = max(0, now.Sub(c.ARIOverdueSince).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, v, name)
	}
}

// Registry is where the collectors are registered (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Certificate is what the gauges show for one managed certificate.
type Certificate struct {
	Name                string
	NotBefore, NotAfter time.Time // zero when nothing (readable) is installed
	RenewalTime         time.Time // when it is (or was) due
	Ready               bool
	Failures            int
	Hooks               []string // hook names, so their counters start at 0
	// ARIOverdueSince: when the CA's renewal window opened, while the
	// certificate is due by it and not replaced (status.Condition); zero
	// when not.
	ARIOverdueSince time.Time
}

// SetCertificates sets the gauges of certs. When complete, certs is every
// configured certificate and the series of any other name are removed (a
// certificate dropped from the config). Counters start at 0 for each name.
func (m *Metrics) SetCertificates(certs []Certificate, complete bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, c := range certs {
		seen[c.Name] = true
		if old, ok := m.certs[c.Name]; ok {
			for _, h := range old.Hooks {
				if !slices.Contains(c.Hooks, h) {
					m.hookRuns.DeletePartialMatch(prometheus.Labels{"name": c.Name, "hook": h})
				}
			}
		}
		m.certs[c.Name] = c
		if c.NotAfter.IsZero() {
			m.notAfter.DeleteLabelValues(c.Name)
			m.notBefore.DeleteLabelValues(c.Name)
		} else {
			m.notAfter.WithLabelValues(c.Name).Set(seconds(c.NotAfter))
			m.notBefore.WithLabelValues(c.Name).Set(seconds(c.NotBefore))
		}
		if c.RenewalTime.IsZero() {
			m.renewal.DeleteLabelValues(c.Name)
		} else {
			m.renewal.WithLabelValues(c.Name).Set(seconds(c.RenewalTime))
		}
		m.ready.WithLabelValues(c.Name).Set(boolValue(c.Ready))
		m.failures.WithLabelValues(c.Name).Set(float64(c.Failures))
		for _, r := range []string{Success, Failure} {
			m.renewals.WithLabelValues(c.Name, r)
			for _, h := range c.Hooks {
				m.hookRuns.WithLabelValues(c.Name, h, r)
			}
		}
	}
	if !complete {
		return
	}
	for name := range m.certs {
		if seen[name] {
			continue
		}
		delete(m.certs, name)
		l := prometheus.Labels{"name": name}
		for _, v := range []*prometheus.GaugeVec{m.notAfter, m.notBefore, m.renewal, m.ready, m.failures} {
			v.DeletePartialMatch(l)
		}
		m.renewals.DeletePartialMatch(l)
		m.hookRuns.DeletePartialMatch(l)
	}
}

// Watch is what the gauges show for one watched endpoint.
type Watch struct {
	Name, Endpoint string
	NotAfter       time.Time // zero when the endpoint could not be checked
	Ready          bool
}

// SetWatches sets the watch gauges to ws, every configured watch; series of
// other watches are removed.
func (m *Metrics) SetWatches(ws []Watch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, w := range ws {
		seen[w.Name] = true
		if old, ok := m.watches[w.Name]; ok && old.Endpoint != w.Endpoint {
			m.watchNotAfter.DeleteLabelValues(old.Name, old.Endpoint)
			m.watchReady.DeleteLabelValues(old.Name, old.Endpoint)
		}
		m.watches[w.Name] = w
		if w.NotAfter.IsZero() {
			m.watchNotAfter.DeleteLabelValues(w.Name, w.Endpoint)
		} else {
			m.watchNotAfter.WithLabelValues(w.Name, w.Endpoint).Set(seconds(w.NotAfter))
		}
		m.watchReady.WithLabelValues(w.Name, w.Endpoint).Set(boolValue(w.Ready))
	}
	for name, w := range m.watches {
		if !seen[name] {
			delete(m.watches, name)
			m.watchNotAfter.DeleteLabelValues(w.Name, w.Endpoint)
			m.watchReady.DeleteLabelValues(w.Name, w.Endpoint)
		}
	}
}

// Renewal counts one renewal attempt of certificate name.
func (m *Metrics) Renewal(name string, ok bool) {
	m.renewals.WithLabelValues(name, result(ok)).Inc()
}

// HookRun counts one run of hook of certificate name.
func (m *Metrics) HookRun(name, hook string, ok bool) {
	m.hookRuns.WithLabelValues(name, hook, result(ok)).Inc()
}

// Checked records when certificates and watches were last checked.
func (m *Metrics) Checked(t time.Time) { m.checked.Set(seconds(t)) }

// Handler serves /metrics (Prometheus text or OpenMetrics, as the scraper
// asks) and /healthz ("ok").
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintln(w, `<html><body><h1>renewer</h1><p><a href="/metrics">metrics</a> <a href="/healthz">healthz</a></p></body></html>`)
	})
	return mux
}

// Serve serves Handler on ln until ctx ends, then shuts down (giving
// in-flight scrapes a few seconds). It returns nil after a shutdown.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("metrics server: %w", err)
}

// ListenAndServe listens on addr (the metrics block's listen) and serves
// until ctx ends. A listen error is returned at once.
func (m *Metrics) ListenAndServe(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return m.Serve(ctx, ln, log)
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func result(ok bool) string {
	if ok {
		return Success
	}
	return Failure
}
