package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/deploy"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/schedule"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// PassOptions shape one pass.
type PassOptions struct {
	Force  bool     // renew even when not due, and even while backing off
	DryRun bool     // obtain from the staging twin, install nothing, run no hooks
	Names  []string // only these certificates (all when empty); naming them also skips a backoff
	NewKey bool     // never reuse the live key (after a revocation for key compromise)
	// Stop, when closed, means start no further certificate; those already
	// under way finish (or end with the context).
	Stop <-chan struct{}
}

// toDeploy is a live certificate whose deploy the pass's deploy stage does,
// after every certificate of the pass is installed.
type toDeploy struct {
	idx     int // in the pass's results
	item    deploy.Item
	retried bool // a deploy redone without a new certificate
	state   store.State
	unlock  func()
}

// RunOnce makes one pass over the selected certificates: inspect and plan
// each; obtain and install those due, at most concurrency at a time; then
// deploy every certificate installed (or whose deploy is pending) in one
// stage, each distinct reload once; then report (Observer). It returns the
// results in config order. One certificate's failure never stops the
// others; the error return is only for a pass that could not start (an
// unknown name).
func (a *Agent) RunOnce(ctx context.Context, o PassOptions) ([]status.Result, error) {
	certs, err := a.Select(o.Names)
	if err != nil {
		return nil, err
	}
	results := make([]status.Result, len(certs))
	seen := make([]status.View, len(certs)) // what the pass leaves, for the report
	// One inspection per certificate, several at once. Most certificates
	// need nothing and are done with here.
	ins := make([]*status.View, len(certs))
	shared := make([]*store.Published, len(certs)) // fleet mode: a version to apply here
	var fleetDown atomic.Bool                      // etcd did not answer: do not wait on it again this pass
	a.inspectEach(certs, func(i int, in status.View) {
		if a.fleet != nil && !o.DryRun {
			if p := a.fleetNewer(ctx, in, &fleetDown); p != nil {
				ins[i], shared[i] = &in, p
				return
			}
		}
		if !o.Force && !in.Decision.Due && !in.DeployPending && (o.DryRun || !a.ariStale(in.Cert, in.Facts, in.State)) {
			if !o.DryRun {
				in = a.settle(in)
			}
			results[i] = status.Result{Name: in.Cert.Name, Action: status.Skipped, Decision: in.Decision}
			seen[i] = in
			return
		}
		ins[i] = &in
	})
	var todo, renew []int
	for i, in := range ins {
		if in != nil {
			todo = append(todo, i)
			if shared[i] == nil {
				renew = append(renew, i)
			}
		}
	}
	if !o.DryRun {
		a.refreshARI(ctx, renew, ins)
	}
	// concurrency workers take the certificates in config order; those
	// installed wait for the deploy stage.
	var mu sync.Mutex
	var deploys []toDeploy
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(a.concurrency, len(todo)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(todo); j = int(next.Add(1) - 1) {
				i := todo[j]
				c := certs[i]
				select {
				case <-o.Stop:
					results[i] = status.Result{Name: c.Name, Action: status.Stopped}
					continue
				default:
				}
				if err := ctx.Err(); err != nil {
					results[i] = status.Result{Name: c.Name, Action: status.Failed, Err: err, Interrupted: true}
					continue
				}
				var d *toDeploy
				if shared[i] != nil {
					results[i], d = a.applyShared(ctx, c, shared[i])
				} else {
					results[i], d = a.renewOne(ctx, c, *ins[i], o)
				}
				ins[i] = nil
				if d != nil {
					d.idx = i
					mu.Lock()
					deploys = append(deploys, *d)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	a.deployStage(ctx, deploys, results)
	if o.DryRun {
		return results, nil
	}
	for _, i := range todo {
		if a.fleet != nil {
			a.reportFleet(ctx, certs[i], results[i])
		}
		seen[i] = a.Inspect(certs[i])
	}
	for _, r := range results {
		a.obs.Finished(r)
	}
	a.obs.PassDone(ctx, seen, len(o.Names) == 0)
	return results, nil
}

// settle clears an averted renewal storm whose cause is gone (the
// certificate is not due), so the failure does not outlive it.
func (a *Agent) settle(in status.View) status.View {
	if in.State.FailedStep != store.StepDueAtOnce {
		return in
	}
	unlock, ok, err := a.store.TryLock(in.Cert.Name)
	if err != nil || !ok {
		return in
	}
	defer unlock()
	st, err := a.loadState(in.Cert.Name)
	if err != nil || !st.Settle() {
		return in
	}
	if err := a.saveState(in.Cert.Name, st); err != nil {
		a.log.Error("could not save state", "cert", in.Cert.Name, "err", err)
	}
	a.log.Info("the new certificate is no longer due at once; failure cleared", "cert", in.Cert.Name)
	return a.Inspect(in.Cert)
}

// deployStage deploys every certificate the pass installed or whose
// deploy was pending, and records each outcome. It holds the locks of its
// certificates, taken in name order (a worker holds one lock at a time and
// releases it before the stage, so two processes never wait on each other),
// and skips a certificate that another process renewed or deployed since.
func (a *Agent) deployStage(ctx context.Context, ds []toDeploy, results []status.Result) {
	ds = a.lockForDeploy(ctx, ds, results)
	if len(ds) == 0 {
		return
	}
	items := make([]deploy.Item, len(ds))
	for i, d := range ds {
		items[i] = d.item
	}
	errs := deploy.Run(ctx, items, deploy.Options{
		Log: a.log, WriteTarget: a.store.WriteTarget, Reload: a.cfg.Reload,
		HookRan: a.obs.HookRan, Concurrency: a.concurrency,
	})
	for i, d := range ds {
		c, f := d.item.Cert, d.item.Facts
		res := &results[d.idx]
		res.HookErrs = errs[i]
		st := d.state
		if len(errs[i]) == 0 {
			st.Deployed(a.now(), f.Serial, d.retried)
		} else {
			st.DeployFailed(a.now(), f.Serial, deploy.Step(errs[i]), errors.Join(errs[i]...).Error(), a.retryAt(f.NotAfter))
		}
		if err := a.saveState(c.Name, st); err != nil {
			a.log.Error("could not save state", "cert", c.Name, "err", err)
			res.StoreErr = errors.Join(res.StoreErr, fmt.Errorf("save state: %w", err))
		}
		d.unlock()
	}
}

// lockForDeploy takes the lock of each certificate of ds, in name order,
// and returns those still to deploy, each with its state read under the
// lock. A certificate whose live version changed meanwhile, or that is
// applied already, is left out (unlocked).
func (a *Agent) lockForDeploy(ctx context.Context, ds []toDeploy, results []status.Result) []toDeploy {
	slices.SortFunc(ds, func(x, y toDeploy) int { return strings.Compare(x.item.Cert.Name, y.item.Cert.Name) })
	var out []toDeploy
	for _, d := range ds {
		c, res := d.item.Cert, &results[d.idx]
		unlock, err := a.store.Lock(ctx, c.Name)
		if err != nil {
			res.HookErrs = append(res.HookErrs, fmt.Errorf("lock before the deploy: %w", err))
			continue
		}
		in := a.Inspect(c)
		switch {
		case in.Facts == nil || in.Facts.Serial != d.item.Facts.Serial:
			a.log.Info("another process installed a newer version meanwhile; it deploys that one", "cert", c.Name)
			unlock()
			continue
		case in.Applied:
			unlock()
			continue
		}
		d.state, d.unlock = in.State, unlock
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y toDeploy) int { return x.idx - y.idx }) // config order
	return out
}

// retryAt is the backoff schedule of a certificate expiring at notAfter
// (zero: unknown), for State's transitions.
func (a *Agent) retryAt(notAfter time.Time) func(int) time.Time {
	return func(failures int) time.Time {
		now := a.now()
		return now.Add(a.backoff.Delay(failures, now, notAfter, a.rnd()))
	}
}

// renewOne works on c, first inspected as first. When it installs a new
// certificate, or finds the live one's deploy pending, it returns the
// deploy to do with c's lock still held.
func (a *Agent) renewOne(ctx context.Context, c config.Certificate, first status.View, o PassOptions) (res status.Result, d *toDeploy) {
	log := a.log.With("cert", c.Name)
	res = status.Result{Name: c.Name}

	// Check, lock, check again: a concurrent `renew` or the daemon may have
	// renewed it while we waited for the lock.
	if in := first; !o.Force && !in.Decision.Due && !in.DeployPending {
		res.Action, res.Decision = status.Skipped, in.Decision
		return res, nil
	} else if !o.Force && len(o.Names) == 0 && in.State.NextAttempt.After(a.now()) {
		res.Action, res.Decision = status.Waiting, in.Decision
		res.Err = fmt.Errorf("backing off until %s after %d %s: %s", in.State.NextAttempt.UTC().Format(time.RFC3339),
			in.State.Failures, plural(in.State.Failures, "failure"), in.State.LastError)
		return res, nil
	}
	unlock, err := a.store.Lock(ctx, c.Name)
	if err != nil {
		res.Action, res.Err = status.Failed, fmt.Errorf("lock: %w", err)
		return res, nil
	}
	defer unlock()       // released before the deploy stage, which takes it again (lockForDeploy)
	a.cleanStale(log, c) // leftovers of a killed run (stale.go)
	in := a.Inspect(c)
	res.Decision = in.Decision
	if in.Problem != nil {
		log.Warn("installed certificate unreadable; renewing", "err", in.Problem)
	}
	if o.Force {
		res.Decision = plan.Decision{Due: true, Reason: plan.Forced, At: a.now()}
	}
	if !res.Decision.Due {
		if in.DeployPending && !o.DryRun {
			log.Info("deploy of the live certificate not yet applied; retrying", "serial", in.Facts.Serial)
			for _, t := range in.Targets {
				log.Warn("install copy does not hold the live certificate; writing it again", "file", t.Path, "err", t.Err)
			}
			res.Action, res.Serial, res.NotAfter, res.Version = status.Applied, in.Facts.Serial, in.Facts.NotAfter, in.Live.ID
			return res, &toDeploy{item: deploy.Item{Cert: c, Version: in.Live, Facts: in.Facts}, retried: true}
		}
		res.Action = status.Skipped
		return res, nil
	}

	// Fleet mode: one node renews for all, under the fleet's lock, and
	// publishes before it installs; the others apply what it published.
	var claim store.Claim
	if a.fleet != nil && !o.DryRun {
		cl, ok, err := a.fleet.Claim(ctx, c.Name)
		if err != nil {
			return a.fail(ctx, log, c, res, false, err), nil // "fleet: claim NAME: ..."
		}
		if !ok {
			log.Info("another node of the fleet is renewing it")
			a.holdOff(c.Name)
			res.Action = status.Elsewhere
			return res, nil
		}
		defer cl.Release()
		claim = cl
		// Check again: a peer may have published while we inspected.
		if p := a.fleetNewer(ctx, in, nil); p != nil {
			return a.installShared(ctx, log, c, in, p, res)
		}
	}

	log.Info("renewing", "reason", string(res.Decision.Reason), "domains", c.Domains, "dry_run", o.DryRun)
	if err := a.checkWritable(c, o.DryRun); err != nil { // no order a read-only disk would throw away (stale.go)
		return a.fail(ctx, log, c, res, false, err), nil
	}
	bundle, err := a.issuerCA.Obtain(ctx, c, in, o.DryRun, !o.NewKey)
	if err != nil {
		return a.fail(ctx, log, c, res, o.DryRun, fmt.Errorf("obtain: %w", err)), nil
	}
	if o.DryRun {
		facts, err := certinfo.Parse(append(bundle.Cert, bundle.Chain...), bundle.Key)
		if err == nil {
			err = facts.Check(c.Domains, a.now())
		}
		if err != nil {
			return a.fail(ctx, log, c, res, true, fmt.Errorf("issued certificate is unusable: %w", err)), nil
		}
		res.Action, res.Serial, res.NotAfter = status.DryRun, facts.Serial, facts.NotAfter
		log.Info("dry run: certificate obtained and discarded", "serial", facts.Serial)
		return res, nil
	}

	sb := store.Bundle{Cert: bundle.Cert, Chain: bundle.Chain, Key: bundle.Key, CA: bundle.Directory, Account: bundle.Account}
	if claim != nil {
		if err := a.publish(ctx, c, claim, sb); err != nil {
			return a.fail(ctx, log, c, res, false, err), nil
		}
	}
	v, facts, err := a.installBundle(log, c, sb, &res)
	if err != nil {
		return a.fail(ctx, log, c, res, false, err), nil
	}
	res.Action, res.Serial, res.NotAfter, res.Version = status.Renewed, facts.Serial, facts.NotAfter, v.ID
	if in.Live == nil {
		res.Action = status.Obtained
	}
	log.Info("certificate installed", "serial", facts.Serial, "not_after", facts.NotAfter.UTC().Format(time.RFC3339), "version", v.ID, "ca", bundle.Directory)

	st := in.State
	st.Installed(a.now(), facts.Serial, string(res.Action))
	if c.ARI { // the new certificate's window, so the next wake-up follows the CA
		a.fetchARI(ctx, log, c, facts, a.issuer(status.View{Inspection: status.Inspection{CA: bundle.Directory}}), &st)
	}
	prior := 0
	if in.State.FailedStep == store.StepDueAtOnce {
		prior = in.State.Failures
	}
	a.checkNotDueAtOnce(log, c, facts, &st, prior)
	// Saved before the deploy: a crash during a hook leaves a state that
	// names the live serial, its deploy pending.
	if err := a.saveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
		res.StoreErr = errors.Join(res.StoreErr, fmt.Errorf("save state: %w", err))
	}
	return res, &toDeploy{item: deploy.Item{Cert: c, Version: v, Facts: facts}}
}

// installBundle installs b as c's new live version and reads it back. A
// storage problem after the swap (an fsync, pruning) goes to res.StoreErr:
// the new version is live all the same.
func (a *Agent) installBundle(log *slog.Logger, c config.Certificate, b store.Bundle, res *status.Result) (*store.Version, *certinfo.Facts, error) {
	v, err := a.store.Install(c.Name, c.Domains, b, a.now())
	if v == nil {
		return nil, nil, fmt.Errorf("install: %w", err)
	}
	if err != nil {
		log.Error("new version installed, with a storage problem", "err", err)
		res.StoreErr = fmt.Errorf("install: %w", err)
	}
	facts, err := certinfo.Load(v.Fullchain, v.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("read installed certificate: %w", err)
	}
	return v, facts, nil
}

// checkNotDueAtOnce guards against a renewal storm: a certificate that is
// due again the moment it is installed (a clock far off, a CA window already
// over) would otherwise be renewed on every pass. It is kept, and the next
// attempt backs off like a failure, loudly, until it is no longer due
// (settle). A renew_before longer than the lifetime cannot cause one: the
// default rule applies then (plan.FallbackNote).
func (a *Agent) checkNotDueAtOnce(log *slog.Logger, c config.Certificate, f *certinfo.Facts, st *store.State, prior int) {
	d := plan.DecideARI(a.now(), c, f, ariOf(c, f, *st))
	if d.Note != "" {
		log.Warn("renew_before does not fit this certificate", "note", d.Note)
	}
	if !d.Due {
		return
	}
	msg := fmt.Sprintf("the new certificate (valid %s to %s) is due again at once (%s): is this machine's clock right?",
		f.NotBefore.UTC().Format(time.RFC3339), f.NotAfter.UTC().Format(time.RFC3339), d.Reason)
	st.DueAtOnce(msg, prior, a.retryAt(f.NotAfter))
	log.Error("renewal storm averted", "err", msg, "next_attempt", st.NextAttempt.UTC().Format(time.RFC3339))
}

// fail records c's failure with err: the failure count, the last result
// and the backoff in its state. A dry run records nothing; neither does
// work cut short by shutdown (ctx, the pass's own context, ended), which is
// no fault of the CA's or the certificate's. An error that merely wraps a
// deadline (etcd or the CA did not answer in time) is a failure like any
// other.
func (a *Agent) fail(ctx context.Context, log *slog.Logger, c config.Certificate, res status.Result, dryRun bool, err error) status.Result {
	res.Action, res.Err = status.Failed, err
	res.Interrupted = ctx.Err() != nil
	log.Error("renewal failed", "err", err, "dry_run", dryRun, "interrupted", res.Interrupted)
	if dryRun || res.Interrupted {
		return res
	}
	st, lerr := a.loadState(c.Name)
	if lerr != nil {
		log.Warn("state unreadable; starting it afresh", "err", lerr)
	}
	var notAfter time.Time
	if f, _ := a.liveFacts(c.Name); f != nil {
		notAfter = f.NotAfter
	}
	st.Failed(a.now(), err.Error(), func(failures int) time.Time {
		now := a.now()
		delay := a.backoff.Delay(failures, now, notAfter, a.rnd())
		if ra, ok := acme.RetryAfter(err); ok && ra > delay {
			delay = ra
		}
		return now.Add(delay)
	})
	log.Info("will retry", "at", st.NextAttempt.UTC().Format(time.RFC3339), "failures", st.Failures)
	if serr := a.saveState(c.Name, st); serr != nil {
		log.Error("could not save state; the retry time is kept in memory", "err", serr)
		res.StoreErr = fmt.Errorf("save state: %w", serr)
	}
	return res
}

// Wakes lists, for each certificate, the next moment it needs the daemon:
// its retry time while backing off, now when it is due or its deploy is
// pending, else its renewal time.
func (a *Agent) Wakes() []schedule.Wake {
	now := a.now()
	wakes := make([]schedule.Wake, len(a.cfg.Certificates))
	a.inspectEach(a.cfg.Certificates, func(i int, in status.View) {
		c := in.Cert
		w := schedule.Wake{Name: c.Name, At: in.Decision.At, Reason: "renewal: " + string(in.Decision.Reason)}
		if c.ARI && in.State.ARI != nil && in.Facts != nil && in.State.ARI.NextFetch.Before(w.At) {
			w = schedule.Wake{Name: c.Name, At: in.State.ARI.NextFetch, Reason: "refresh renewal information"}
		}
		switch {
		case in.State.NextAttempt.After(now):
			w = schedule.Wake{Name: c.Name, At: in.State.NextAttempt, Reason: "retry after failure", Exact: true}
		case in.Decision.Due || in.DeployPending:
			w = schedule.Wake{Name: c.Name, At: now, Reason: "due", Exact: true}
			if until := a.heldOff(c.Name); until.After(now) && !in.DeployPending {
				w = schedule.Wake{Name: c.Name, At: until, Reason: "renewing on another node", Exact: true}
			}
		}
		wakes[i] = w
	})
	return wakes
}
