package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/schedule"
	"github.com/renewer/renewer/internal/status"
)

// minSleep keeps a daemon whose next wake is "now" (a certificate that stays
// due) from spinning.
const minSleep = time.Second

// DaemonOptions wire RunDaemon.
type DaemonOptions struct {
	Options                                // for each agent (Log, Now, Version, ...)
	Load    func() (*config.Config, error) // reads the config again on Reload
	Reload  <-chan struct{}                // a receive means "reload the config" (SIGHUP)
	Notify  func(state string)             // service-manager notifications (sd_notify); may be nil
	Rand    *rand.Rand                     // for wake-up jitter; nil means a random seed
	// NewReporter makes the reporter (metrics, watches, notifications) of a
	// config, at start and on each reload; nil means none.
	NewReporter NewReporter
	// OpenFleet opens the shared storage a fleet block describes. With it
	// the daemon owns its fleet connection: it opens it at start (unless
	// Options.Fleet is given, which its caller closes), and a reload whose
	// fleet block changed opens and checks the new one and swaps it in, or
	// is refused (daemonfleet.go). nil: a changed fleet block is refused.
	OpenFleet func(*config.Fleet) (FleetConn, error)
	// FleetEvery is how often, in fleet mode, the daemon looks at the
	// fleet between passes (FleetRound); 0 means DefaultFleetEvery.
	FleetEvery time.Duration
}

// reporterCloseTimeout bounds the wait for the notifications of a reporter
// replaced by a reload (they keep being delivered in the background).
const reporterCloseTimeout = 30 * time.Second

// closeReporter waits for rep's notifications under way (retries included)
// until ctx ends, then abandons the rest, saying so.
func closeReporter(ctx context.Context, log *slog.Logger, rep PassReporter) {
	if rep == nil {
		return
	}
	if err := rep.Close(ctx); err != nil {
		log.Warn("notifications abandoned", "err", err)
	}
}

// reporters owns the daemon's reporter and the ones a reload replaced: a
// replaced reporter finishes its deliveries in the background, so a reload
// never waits for the old config's notifications (a webhook retrying for
// a minute); at stop, everything still under way gets the shutdown grace.
type reporters struct {
	log      *slog.Logger
	current  PassReporter
	retiring sync.WaitGroup
	abandon  context.Context // done once the daemon stops waiting for retired ones
	cancel   context.CancelFunc
}

func newReporters(log *slog.Logger, rep PassReporter) *reporters {
	r := &reporters{log: log, current: rep}
	r.abandon, r.cancel = context.WithCancel(context.Background())
	return r
}

// replace makes next the current reporter and retires the old one.
func (r *reporters) replace(next PassReporter) {
	old := r.current
	r.current = next
	if old == nil {
		return
	}
	r.retiring.Go(func() {
		ctx, cancel := context.WithTimeout(r.abandon, reporterCloseTimeout)
		defer cancel()
		closeReporter(ctx, r.log, old)
	})
}

// close waits for every reporter's deliveries until grace has passed.
func (r *reporters) close(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	closeReporter(ctx, r.log, r.current)
	done := make(chan struct{})
	go func() { r.retiring.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	r.cancel()
	<-done
}

// RunDaemon is `renewer run`: a pass at once, then one timer set to the
// earliest of every certificate's renewal or retry time and the periodic
// check, plus jitter; a pass at each wake-up. A Reload swaps in a new config
// only if it is valid, then runs a pass. When ctx ends, no new certificate is
// started; work under way gets cfg.Daemon.ShutdownGrace to finish, then its
// context is cancelled. It returns nil after a clean shutdown.
func RunDaemon(ctx context.Context, cfg *config.Config, o DaemonOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	log := o.Log
	fl, err := startFleet(cfg, o)
	if err != nil {
		return err
	}
	defer fl.close()
	opts := o.Options
	opts.Fleet = fl.conn
	a, err := New(cfg, opts)
	if err != nil {
		return err
	}
	defer func() { a.Close() }()
	var rep PassReporter
	if o.NewReporter != nil {
		if rep, err = o.NewReporter(cfg, a.Store()); err != nil {
			return err
		}
		a.SetObserver(rep)
	}
	reps := newReporters(log, rep)
	var grace atomic.Int64 // the running config's shutdown_grace; a reload replaces cfg
	grace.Store(int64(cfg.Daemon.ShutdownGrace))
	defer func() { reps.close(time.Duration(grace.Load())) }()

	// Fleet mode: answer every node's HTTP-01 and TLS-ALPN-01 challenges,
	// and run a pass as soon as another node publishes a version (or etcd
	// is reachable again).
	if fl.conn != nil {
		fl.serve(ctx, a)
		log.Info("fleet mode", "node", fl.conn.Node())
	}
	// Fleet mode: every FleetEvery, this node's reports, the fleet's
	// convergence and its metrics (fleetround.go), without a pass. The
	// ticker runs for a single node too, so a reload may turn fleet mode on.
	fleetTicker := time.NewTicker(a.FleetEvery(o.FleetEvery))
	defer fleetTicker.Stop()

	// work outlives ctx by the grace period, so installs under way finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := make(chan struct{})
	announced := make(chan struct{}) // closed once "stopping" is logged: "stopped" comes after it
	go func() {
		select {
		case <-ctx.Done():
		case <-work.Done():
			return
		}
		close(stop)
		g := time.Duration(grace.Load())
		log.Info("stopping: no new work; waiting for work under way", "grace", g)
		o.Notify("STOPPING=1")
		close(announced)
		t := time.NewTimer(g)
		defer t.Stop()
		select {
		case <-t.C:
			log.Warn("grace period over: abandoning work under way")
			cancelWork()
		case <-work.Done():
		}
	}()

	for _, w := range RuleWarnings(cfg) {
		log.Warn(w)
	}
	log.Info("renewer daemon started", "config", cfg.File, "confd_files", len(cfg.ConfD), "certificates", len(cfg.Certificates), "check", cfg.Daemon.Check)
	o.Notify("READY=1")
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			<-announced
			log.Info("renewer daemon stopped")
			return nil
		case <-o.Reload:
			o.Notify("RELOADING=1")
			next, err := o.Load()
			if err != nil {
				log.Error("config reload failed; keeping the running config", "err", err)
				o.Notify("READY=1")
				continue
			}
			fch, err := fl.prepare(ctx, next.Fleet)
			if err != nil {
				log.Error("config reload refused; keeping the running config and fleet connection", "err", err)
				o.Notify("READY=1")
				continue
			}
			nopts := o.Options
			nopts.Fleet = fl.shared(fch)
			na, err := New(next, nopts)
			if err != nil {
				fch.discard()
				log.Error("config reload failed; keeping the running config", "err", err)
				o.Notify("READY=1")
				continue
			}
			var nrep PassReporter
			if o.NewReporter != nil {
				if nrep, err = o.NewReporter(next, na.Store()); err != nil {
					na.Close()
					fch.discard()
					log.Error("config reload failed; keeping the running config", "err", err)
					o.Notify("READY=1")
					continue
				}
				na.SetObserver(nrep)
			}
			a.Close()
			reps.replace(nrep)
			a, cfg = na, next
			if fch != nil {
				fl.commit(ctx, fch, a)
			} else {
				fl.listen(a)
			}
			grace.Store(int64(cfg.Daemon.ShutdownGrace))
			log.Info("config reloaded", "config", cfg.File, "confd_files", len(cfg.ConfD), "certificates", len(cfg.Certificates))
			o.Notify("READY=1")
		case <-timer.C:
		case <-fl.changes: // nil (never ready) for a single node
			log.Debug("fleet: a new version was published; checking")
		case <-fleetTicker.C: // fleetround.go: reports, convergence, metrics; no pass
			if a.fleet != nil {
				a.FleetRound(work)
			}
			continue
		}

		results, err := a.RunOnce(work, PassOptions{Stop: stop})
		if err != nil {
			log.Error("pass failed", "err", err)
		}
		logPass(log, results)
		if ctx.Err() != nil {
			<-announced
			log.Info("renewer daemon stopped")
			return nil
		}

		now := o.Now()
		wake := schedule.Next(now, a.Wakes(), cfg.Daemon.Schedule, cfg.Daemon.Jitter, o.Rand)
		sleep := max(wake.At.Sub(now), minSleep)
		log.Info("next wake-up", "at", now.Add(sleep).UTC().Format(time.RFC3339), "in", sleep.Round(time.Second).String(),
			"reason", wake.Reason, "cert", wake.Name)
		o.Notify(fmt.Sprintf("STATUS=%s; next check %s", summary(results), now.Add(sleep).UTC().Format(time.RFC3339)))
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(sleep)
	}
}

// logPass logs what a pass did that is worth a line (not-due certificates
// are quiet; failures were logged as they happened).
func logPass(log *slog.Logger, results []status.Result) {
	for _, r := range results {
		switch {
		case r.Action == status.Skipped || r.Action == status.Stopped:
		case r.Action == status.Waiting:
			log.Debug("backing off", "cert", r.Name, "err", r.Err)
		case !r.OK():
			log.Warn("certificate needs attention", "cert", r.Name, "action", string(r.Action),
				"err", errors.Join(r.Errs()...))
		}
	}
}

// summary is the STATUS line's count of a pass. A certificate whose deploy
// failed (install copies, hooks, verification) or whose outcome could not be
// stored is not OK even when it was renewed: it counts as "not deployed", so
// `systemctl status` never shows a clean pass while a server keeps the old
// certificate.
func summary(results []status.Result) string {
	n := map[status.Action]int{}
	undeployed := 0
	for _, r := range results {
		n[r.Action]++
		if r.Action != status.Failed && r.Action != status.Waiting && !r.OK() {
			undeployed++
		}
	}
	return fmt.Sprintf("%d certificates: %d renewed, %d failed, %d not deployed, %d backing off", len(results),
		n[status.Renewed]+n[status.Obtained], n[status.Failed], undeployed, n[status.Waiting])
}
