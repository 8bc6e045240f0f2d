// Package report is the last stage of a pass: it turns what renewer did
// (results, hook runs) and what it sees now (its certificates, the endpoints
// it watches) into metrics and notifications. `renewer renew` and the daemon
// both drive it; see Reporter.
package report

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/metrics"
	"github.com/renewer/renewer/internal/notify"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/watch"
)

// Options wire a Reporter. Zero values get defaults.
type Options struct {
	Log     *slog.Logger
	Now     func() time.Time
	Version string
	// Metrics is updated when set. Make it once per process and keep it
	// across configuration reloads (counters survive, removed names vanish).
	Metrics *metrics.Metrics
	// Notify tunes the dispatcher (retries, HTTP client); its Log, Now and
	// Version default to the ones above.
	Notify notify.Options
	// WatchEvery is how often Check connects to the watched endpoints; in
	// between it reuses the last results (judged again at the current
	// time). Zero: at every Check. The daemon, which may pass every minute
	// while a renewal backs off, sets it (see DefaultWatchEvery).
	WatchEvery time.Duration
}

// DefaultWatchEvery is the daemon's WatchEvery.
const DefaultWatchEvery = 15 * time.Minute

// Reporter reports for one configuration. It implements agent.Observer
// (it is checked there: this package does not import the agent).
type Reporter struct {
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics   // nil: no metrics
	notify  *notify.Dispatcher // nil: no notify blocks
	checker *watch.Checker

	watchEvery  time.Duration
	mu          sync.Mutex
	lastWatches []watch.Result // of the last connection to the watches
	watchedAt   time.Time
	fleetLogged map[string]string // fleet mode: the problems last logged, by certificate (fleet.go)
}

// NotifyDir is where notification deduplication state is kept.
func NotifyDir(cfg *config.Config) string { return filepath.Join(cfg.Storage.Path, "notify") }

// New makes a Reporter for cfg. Notification state lives in NotifyDir(cfg).
func New(cfg *config.Config, o Options) (*Reporter, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Reporter{cfg: cfg, log: o.Log, now: o.Now, metrics: o.Metrics, checker: &watch.Checker{Now: o.Now}, watchEvery: o.WatchEvery}
	if len(cfg.Notifiers) > 0 {
		no := o.Notify
		if no.Log == nil {
			no.Log = o.Log
		}
		if no.Now == nil {
			no.Now = o.Now
		}
		if no.Version == "" {
			no.Version = o.Version
		}
		d, err := notify.New(cfg.Notifiers, NotifyDir(cfg), no)
		if err != nil {
			return nil, err
		}
		r.notify = d
	}
	return r, nil
}

// HookRan implements agent.Observer: it counts the run.
func (r *Reporter) HookRan(cert, hook string, err error) {
	if r.metrics != nil {
		r.metrics.HookRun(cert, hook, err == nil)
	}
}

// Finished implements agent.Observer: it counts renewals and sends
// "renewed". Failures are notified from the condition they leave (see
// Observe), so they are deduplicated and survive restarts.
func (r *Reporter) Finished(res status.Result) {
	switch {
	case res.Action == status.Renewed || res.Action == status.Obtained:
		if r.metrics != nil {
			r.metrics.Renewal(res.Name, true)
		}
		if r.notify != nil {
			c := r.certificate(res.Name)
			r.notify.Send(notify.Event{
				Kind: notify.Renewed, Severity: notify.Info, Subject: notify.Certificate, Name: res.Name,
				Domains: c.Domains, Serial: res.Serial, NotAfter: res.NotAfter,
				Message: fmt.Sprintf("Certificate %s was %s: serial %s, valid until %s (%s).", res.Name, res.Action,
					res.Serial, res.NotAfter.UTC().Format(time.RFC3339), res.Decision.Reason),
			})
		}
	case res.Action == status.Failed && res.Err != nil && !res.Interrupted:
		if r.metrics != nil {
			r.metrics.Renewal(res.Name, false)
		}
	}
}

func (r *Reporter) certificate(name string) config.Certificate {
	for _, c := range r.cfg.Certificates {
		if c.Name == name {
			return c
		}
	}
	return config.Certificate{Name: name}
}

// Snapshot is what one check saw.
type Snapshot struct {
	Checked      time.Time
	Certificates []status.View
	Watches      []watch.Result
	// Complete: every configured certificate and watch is here (not a
	// `renew NAME` subset), so metrics of names no longer configured go.
	Complete bool
}

// PassDone implements agent.Observer: it reports what the pass left of its
// certificates and, after a complete pass, checks the watches (see
// Observe).
func (r *Reporter) PassDone(ctx context.Context, certs []status.View, complete bool) {
	r.Report(ctx, certs, complete)
}

// Report is PassDone, returning what it reported.
func (r *Reporter) Report(ctx context.Context, certs []status.View, complete bool) Snapshot {
	s := Snapshot{Certificates: certs, Complete: complete}
	if complete {
		s.Watches = r.watches(ctx)
	}
	s.Checked = r.now()
	r.Observe(s)
	return s
}

// watches connects to every watch, or reuses the last results when they are
// younger than WatchEvery, judged again at the current time.
func (r *Reporter) watches(ctx context.Context) []watch.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.lastWatches == nil || r.watchEvery <= 0 || now.Sub(r.watchedAt) >= r.watchEvery {
		r.lastWatches, r.watchedAt = r.checker.CheckAll(ctx, r.cfg.Watches), now
		if r.lastWatches == nil {
			r.lastWatches = []watch.Result{}
		}
		return r.lastWatches
	}
	out := make([]watch.Result, len(r.lastWatches))
	for i, w := range r.lastWatches {
		watch.Assess(&w, now)
		out[i] = w
	}
	return out
}

// Observe reports a snapshot: it sets the metrics gauges, logs each problem
// and hands every subject's current problems to the notifier, which sends
// what is new or due again and "recovered" for what is over.
func (r *Reporter) Observe(s Snapshot) {
	now := s.Checked
	if now.IsZero() {
		now = r.now()
	}
	var obs []notify.Observation
	var certMetrics []metrics.Certificate
	for _, in := range s.Certificates {
		ob := CertificateProblems(in)
		obs = append(obs, ob)
		certMetrics = append(certMetrics, certificateMetrics(in))
		for _, p := range ob.Problems {
			r.log.Warn(p.Message, "cert", in.Cert.Name, "problem", string(p.Kind), "severity", p.Severity)
		}
	}
	var watchMetrics []metrics.Watch
	for _, w := range s.Watches {
		ob := WatchProblems(w, now)
		obs = append(obs, ob)
		m := metrics.Watch{Name: w.Watch.Name, Endpoint: w.Watch.Endpoint, Ready: w.Health == plan.OK && w.Err == nil && w.VerifyErr == nil}
		if w.Facts != nil {
			m.NotAfter = w.Facts.NotAfter
		}
		watchMetrics = append(watchMetrics, m)
		for _, p := range ob.Problems {
			r.log.Warn(p.Message, "watch", w.Watch.Name, "endpoint", w.Watch.Endpoint, "problem", string(p.Kind), "severity", p.Severity)
		}
	}
	if r.metrics != nil {
		r.metrics.SetCertificates(certMetrics, s.Complete)
		if s.Complete {
			r.metrics.SetWatches(watchMetrics)
			r.metrics.Checked(now)
		}
	}
	if r.notify != nil {
		r.notify.Observe(obs)
	}
}

// Flush waits until the notifications under way are delivered (retries
// included), or ctx ends.
func (r *Reporter) Flush(ctx context.Context) error {
	if r.notify == nil {
		return nil
	}
	return r.notify.Flush(ctx)
}

// Close waits (until ctx ends) for notifications still being delivered,
// then abandons them. Use the Reporter no more.
func (r *Reporter) Close(ctx context.Context) error {
	if r.notify == nil {
		return nil
	}
	return r.notify.Close(ctx)
}

func certificateMetrics(in status.View) metrics.Certificate {
	m := metrics.Certificate{Name: in.Cert.Name, RenewalTime: in.Decision.At, Ready: in.Ready, Failures: in.State.Failures,
		ARIOverdueSince: in.ARIOverdueSince}
	if in.Facts != nil {
		m.NotBefore, m.NotAfter = in.Facts.NotBefore, in.Facts.NotAfter
	}
	for _, h := range in.Cert.Hooks {
		m.Hooks = append(m.Hooks, h.Name)
	}
	m.Hooks = append(m.Hooks, in.Cert.Reloads...)
	return m
}

// CertificateProblems is what to notify of a managed certificate: the
// problems its condition lists (status.Assess), about it.
func CertificateProblems(in status.View) notify.Observation {
	about := notify.Event{Subject: notify.Certificate, Name: in.Cert.Name, Domains: in.Cert.Domains}
	if f := in.Facts; f != nil {
		about.Serial, about.NotAfter = f.Serial, f.NotAfter
	}
	return notify.Observation{About: about, Problems: in.Problems}
}

// WatchProblems says what is wrong with a watched endpoint now: expiring
// within warn_before (critical within critical_before), and watch_failed
// when it cannot be checked or its certificate does not verify.
func WatchProblems(w watch.Result, now time.Time) notify.Observation {
	about := notify.Event{Subject: notify.Watch, Name: w.Watch.Name, Endpoint: w.Watch.Endpoint}
	if w.Facts != nil {
		about.Serial, about.NotAfter, about.Domains = w.Facts.Serial, w.Facts.NotAfter, w.Facts.Names
	}
	ob := notify.Observation{About: about}
	if w.Err != nil || w.VerifyErr != nil {
		err, msg := w.Err, fmt.Sprintf("Watched endpoint %s (%s) cannot be checked.", w.Watch.Name, w.Watch.Endpoint)
		if err == nil {
			err, msg = w.VerifyErr, fmt.Sprintf("The certificate served by %s (%s) does not verify for %s.",
				w.Watch.Endpoint, w.Watch.Name, or(w.Watch.ServerName, "its address"))
		}
		ob.Problems = append(ob.Problems, notify.Event{Kind: notify.WatchFailed, Severity: notify.Warning,
			NotAfter: about.NotAfter, Message: msg, Error: err.Error()})
	}
	if w.Facts != nil && w.Facts.NotAfter.Sub(now) < w.Watch.WarnBefore {
		severity := notify.Warning
		if w.Facts.NotAfter.Sub(now) < w.Watch.CriticalBefore {
			severity = notify.Critical
		}
		ob.Problems = append(ob.Problems, notify.Event{Kind: notify.Expiring, Severity: severity, NotAfter: w.Facts.NotAfter,
			Message: fmt.Sprintf("The certificate served by %s (%s) %s; renewer does not renew it.",
				w.Watch.Endpoint, w.Watch.Name, status.Expires(w.Facts.NotAfter, now))})
	}
	return ob
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
