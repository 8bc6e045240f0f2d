// Package agent runs renewer's job: for each certificate, inspect what is
// installed, plan, obtain, install, run hooks, and record the result. It is
// the only package that knows the order of those stages; one pass is what
// `renewer renew` runs.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/hook"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/schedule"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/verify"
)

// Agent works on one configuration.
type Agent struct {
	cfg         *config.Config
	store       *store.Store
	log         *slog.Logger
	now         func() time.Time
	solver      *acme.HTTPSolver
	tlsSolver   *acme.TLSALPNSolver
	concurrency int
	version     string
	backoff     schedule.Backoff
	rnd         func() float64
	obs         Observer
	fleet       store.Shared // nil: a single node (fleet.go)
	closeFleet  bool

	mu      sync.Mutex
	clients map[string]*acme.Client // by directory URL

	stateMu sync.Mutex
	unsaved map[string]store.State // state that could not be written (a full disk), by certificate

	elsewhereMu sync.Mutex
	elsewhere   map[string]time.Time // fleet mode: another node renews it; do not wake for it before (fleet.go)
}

// Options wire an Agent. Zero values get defaults.
type Options struct {
	Log         *slog.Logger
	Now         func() time.Time
	Concurrency int            // 0 means the config's daemon.concurrency
	Version     string         // for the ACME User-Agent
	Rand        func() float64 // in [0,1), for backoff jitter; nil means math/rand/v2

	// Observer is told of results and hook runs (metrics, notifications); nil: nobody.
	Observer Observer

	// Fleet, when set, is the storage this node shares with the other
	// nodes of a fleet (internal/fleet); nil for a single node.
	Fleet store.Shared
	// CloseFleet makes Close close Fleet too (when it has a Close method):
	// for one-shot commands that own it. The daemon's agents share one.
	CloseFleet bool
}

// New opens the configured storage. It contacts no CA.
func New(cfg *config.Config, o Options) (*Agent, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Concurrency <= 0 {
		o.Concurrency = max(1, cfg.Daemon.Concurrency)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	st, err := store.Open(cfg.Storage.Path, cfg.Storage.KeepVersions)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	a := &Agent{
		cfg: cfg, store: st, log: o.Log, now: o.Now, concurrency: o.Concurrency, version: o.Version, rnd: o.Rand,
		backoff:   schedule.Backoff{Min: cfg.Daemon.RetryMin, Max: cfg.Daemon.RetryMax},
		solver:    acme.NewHTTPSolver(o.Log),
		tlsSolver: acme.NewTLSALPNSolver(o.Log),
		clients:   map[string]*acme.Client{},
		unsaved:   map[string]store.State{},
		fleet:     o.Fleet, closeFleet: o.CloseFleet,
	}
	if o.Fleet != nil {
		a.solver.SetShared(o.Fleet)
	}
	a.SetObserver(o.Observer)
	return a, nil
}

// Close releases listeners still open.
func (a *Agent) Close() {
	a.solver.Close()
	a.tlsSolver.Close()
	if c, ok := a.fleet.(interface{ Close() error }); ok && a.closeFleet {
		_ = c.Close()
	}
}

// Store is the storage the agent works on.
func (a *Agent) Store() *store.Store { return a.store }

// Select returns the certificates with the given names, in config order, or
// every certificate when names is empty. An unknown name is an error.
func (a *Agent) Select(names []string) ([]config.Certificate, error) {
	if len(names) == 0 {
		return a.cfg.Certificates, nil
	}
	var out []config.Certificate
	var unknown []string
	for _, n := range names {
		i := slices.IndexFunc(a.cfg.Certificates, func(c config.Certificate) bool { return c.Name == n })
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		if !slices.ContainsFunc(out, func(c config.Certificate) bool { return c.Name == n }) {
			out = append(out, a.cfg.Certificates[i])
		}
	}
	if len(unknown) > 0 {
		where := a.cfg.File
		if len(a.cfg.ConfD) > 0 {
			where += " or its conf.d"
		}
		return nil, fmt.Errorf("no certificate named %s in %s", strings.Join(unknown, ", "), where)
	}
	return out, nil
}

// liveFacts reads the live certificate of name, if there is a readable one.
func (a *Agent) liveFacts(name string) (*certinfo.Facts, error) {
	v, err := a.store.Live(name)
	if err != nil {
		return nil, err
	}
	return certinfo.Load(v.Fullchain, v.Key)
}

// Inspection is what is known about one certificate right now.
type Inspection struct {
	Cert     config.Certificate
	Live     *store.Version  // nil when nothing is installed
	Facts    *certinfo.Facts // nil when nothing (readable) is installed
	Problem  error           // why the live files could not be read, if they exist
	Decision plan.Decision
	Health   plan.Health
	State    store.State
	ARI      *plan.ARI // the CA's window for the live certificate, when known
	CA       string    // ACME directory that issued the live certificate, when recorded
	Account  string    // the account (acme.AccountKey) that ordered it, when recorded
}

// Inspect reads the live certificate and state of c and plans it.
func (a *Agent) Inspect(c config.Certificate) Inspection {
	now := a.now()
	in := Inspection{Cert: c}
	v, err := a.store.Live(c.Name)
	switch {
	case err == nil:
		in.Live = v
		in.Facts, in.Problem = certinfo.Load(v.Fullchain, v.Key)
		if m, err := store.ReadMeta(v); err == nil {
			in.CA, in.Account = m.CA, m.Account
		}
	case !errors.Is(err, store.ErrNotFound):
		in.Problem = err
	}
	if in.Problem != nil {
		in.Facts = nil
	}
	in.State, err = a.loadState(c.Name)
	if err != nil && in.Problem == nil {
		in.Problem = err
	}
	in.ARI = ariOf(c, in.Facts, in.State)
	in.Decision = plan.DecideARI(now, c, in.Facts, in.ARI)
	in.Health = plan.Assess(now, c, in.Facts)
	return in
}

// inspectEach inspects each of certs and calls f with its index and
// inspection, several at once (f must be safe for that): reading and parsing
// each certificate and key is most of the work of a pass that renews nothing.
func (a *Agent) inspectEach(certs []config.Certificate, f func(int, Inspection)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(certs), 2*runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(certs); i = int(next.Add(1) - 1) {
				f(i, a.Inspect(certs[i]))
			}
		})
	}
	wg.Wait()
}

// Action says what a pass did with one certificate.
type Action string

const (
	Skipped  Action = "not due"
	Renewed  Action = "renewed"
	Obtained Action = "obtained" // first issuance
	DryRun   Action = "dry run ok"
	Applied  Action = "deploy retried" // install copies, hooks and verification redone for the live certificate
	Failed   Action = "failed"
	Waiting  Action = "backing off" // failed before; next attempt not yet
	Stopped  Action = "not started" // the daemon is shutting down
	// Fleet mode (fleet.go):
	Elsewhere Action = "renewing on another node" // another node holds the fleet's renewal lock
	Synced    Action = "applied from fleet"       // another node's new version installed and deployed here
)

// Result is the outcome of one certificate in a pass.
type Result struct {
	Name     string
	Action   Action
	Decision plan.Decision
	Serial   string
	NotAfter time.Time
	Version  string  // new live version, when one was installed
	Err      error   // why the certificate was not renewed (nil when it was, or was not due)
	HookErrs []error // deploy steps that failed after a successful install: install copies, hooks, verification
	// StoreErr: the storage could not record the outcome (a full or failing
	// disk): the state file (kept in memory until it can be written, so a
	// backoff holds) or, after a new version went live, the fsync of live/
	// or pruning.
	StoreErr error
}

// OK reports whether the result needs no attention.
func (r Result) OK() bool { return r.Err == nil && len(r.HookErrs) == 0 && r.StoreErr == nil }

// Errs is every error of the result, nil ones left out.
func (r Result) Errs() []error {
	return slices.DeleteFunc(append([]error{r.Err, r.StoreErr}, r.HookErrs...), func(e error) bool { return e == nil })
}

// loadState is the stored state of name or, after its last save failed (a
// full disk), the state that could not be written: kept in memory, so that
// the backoff it records holds while the disk refuses it.
func (a *Agent) loadState(name string) (store.State, error) {
	a.stateMu.Lock()
	st, ok := a.unsaved[name]
	a.stateMu.Unlock()
	if ok {
		return st, nil
	}
	return a.store.LoadState(name)
}

// saveState writes the state of name, or keeps it in memory when it cannot.
func (a *Agent) saveState(name string, st store.State) error {
	err := a.store.SaveState(name, st)
	a.stateMu.Lock()
	defer a.stateMu.Unlock()
	if err != nil {
		a.unsaved[name] = st
		return err
	}
	delete(a.unsaved, name)
	return nil
}

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

// RunOnce makes one pass over the selected certificates, at most
// concurrency at a time, and returns their results in config order. One
// certificate's failure never stops the others; the error return is only for
// a pass that could not start (an unknown name).
func (a *Agent) RunOnce(ctx context.Context, o PassOptions) ([]Result, error) {
	certs, err := a.Select(o.Names)
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(certs))
	// One inspection per certificate, several at once. Most certificates
	// need nothing and are done with here, so a pass over thousands holds
	// few inspections at a time; the others keep theirs for the ARI refresh
	// and renewOne's first check (renewOne inspects again under the lock).
	ins := make([]*Inspection, len(certs))
	shared := make([]*store.Published, len(certs)) // fleet mode: a version to apply here
	var fleetDown atomic.Bool                      // etcd did not answer: do not wait on it again this pass
	a.inspectEach(certs, func(i int, in Inspection) {
		if a.fleet != nil && !o.DryRun {
			if p := a.fleetNewer(ctx, in, &fleetDown); p != nil {
				ins[i], shared[i] = &in, p
				return
			}
		}
		if !o.Force && !in.Decision.Due && !a.hooksPending(in) && (o.DryRun || !a.ariStale(in.Cert, in.Facts, in.State)) {
			results[i] = Result{Name: in.Cert.Name, Action: Skipped, Decision: in.Decision}
			if !o.DryRun {
				a.obs.Inspected(in)
			}
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
	// concurrency workers take the certificates in config order.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(a.concurrency, len(todo)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(todo); j = int(next.Add(1) - 1) {
				i := todo[j]
				c := certs[i]
				select {
				case <-o.Stop:
					results[i] = Result{Name: c.Name, Action: Stopped}
					continue
				default:
				}
				if err := ctx.Err(); err != nil {
					results[i] = Result{Name: c.Name, Action: Failed, Err: err}
					continue
				}
				if shared[i] != nil {
					results[i] = a.applyShared(ctx, c, shared[i])
				} else {
					results[i] = a.renewOne(ctx, c, *ins[i], o)
				}
				ins[i] = nil
				if a.fleet != nil && !o.DryRun {
					a.reportFleet(ctx, c, results[i])
				}
				if !o.DryRun {
					a.obs.Inspected(a.Inspect(c))
				}
			}
		})
	}
	wg.Wait()
	if !o.DryRun {
		for _, r := range results {
			a.obs.Finished(r)
		}
	}
	return results, nil
}

// renewOne works on c, first inspected as first.
func (a *Agent) renewOne(ctx context.Context, c config.Certificate, first Inspection, o PassOptions) Result {
	log := a.log.With("cert", c.Name)
	res := Result{Name: c.Name}

	// Check, lock, check again: a concurrent `renew` or the daemon may have
	// renewed it while we waited for the lock.
	if in := first; !o.Force && !in.Decision.Due && !a.hooksPending(in) {
		res.Action, res.Decision = Skipped, in.Decision
		return res
	} else if !o.Force && len(o.Names) == 0 && in.State.NextAttempt.After(a.now()) {
		res.Action, res.Decision = Waiting, in.Decision
		res.Err = fmt.Errorf("backing off until %s after %d %s: %s", in.State.NextAttempt.UTC().Format(time.RFC3339),
			in.State.Failures, plural(in.State.Failures, "failure"), in.State.LastError)
		return res
	}
	unlock, err := a.store.Lock(ctx, c.Name)
	if err != nil {
		res.Action, res.Err = Failed, fmt.Errorf("lock: %w", err)
		return res
	}
	defer unlock()
	in := a.Inspect(c)
	res.Decision = in.Decision
	if in.Problem != nil {
		log.Warn("installed certificate unreadable; renewing", "err", in.Problem)
	}
	if o.Force {
		res.Decision = plan.Decision{Due: true, Reason: plan.Forced, At: a.now()}
	}
	if !res.Decision.Due {
		if a.hooksPending(in) && !o.DryRun {
			return a.retryHooks(ctx, log, c, in, res)
		}
		res.Action = Skipped
		return res
	}

	// Fleet mode: one node renews for all, under the fleet's lock, and
	// publishes before it installs; the others apply what it published.
	var claim store.Claim
	if a.fleet != nil && !o.DryRun {
		cl, ok, err := a.fleet.Claim(ctx, c.Name)
		if err != nil {
			return a.fail(log, c, res, false, err) // "fleet: claim NAME: ..."
		}
		if !ok {
			log.Info("another node of the fleet is renewing it")
			a.holdOff(c.Name)
			res.Action = Elsewhere
			return res
		}
		defer cl.Release()
		claim = cl
		// Check again: a peer may have published while we inspected.
		if p := a.fleetNewer(ctx, in, nil); p != nil {
			return a.installShared(ctx, log, c, in, p, res)
		}
	}

	log.Info("renewing", "reason", string(res.Decision.Reason), "domains", c.Domains, "dry_run", o.DryRun)
	bundle, err := a.obtain(ctx, c, o.DryRun, in, !o.NewKey)
	if err != nil {
		return a.fail(log, c, res, o.DryRun, fmt.Errorf("obtain: %w", err))
	}
	if o.DryRun {
		facts, err := certinfo.Parse(append(bundle.Cert, bundle.Chain...), bundle.Key)
		if err == nil {
			err = facts.Check(c.Domains, a.now())
		}
		if err != nil {
			return a.fail(log, c, res, true, fmt.Errorf("issued certificate is unusable: %w", err))
		}
		res.Action, res.Serial, res.NotAfter = DryRun, facts.Serial, facts.NotAfter
		log.Info("dry run: certificate obtained and discarded", "serial", facts.Serial)
		return res
	}

	sb := store.Bundle{Cert: bundle.Cert, Chain: bundle.Chain, Key: bundle.Key, CA: bundle.Directory, Account: bundle.Account}
	if claim != nil {
		if err := a.publish(ctx, c, claim, sb); err != nil {
			return a.fail(log, c, res, false, err)
		}
	}
	v, facts, err := a.installBundle(log, c, sb, &res)
	if err != nil {
		return a.fail(log, c, res, false, err)
	}
	res.Action, res.Serial, res.NotAfter, res.Version = Renewed, facts.Serial, facts.NotAfter, v.ID
	if in.Facts == nil {
		res.Action = Obtained
	}
	log.Info("certificate installed", "serial", facts.Serial, "not_after", facts.NotAfter.UTC().Format(time.RFC3339), "version", v.ID, "ca", bundle.Directory)

	st := in.State
	st.LastAttempt, st.LastSuccess, st.LastResult, st.LastError, st.Failures = a.now(), a.now(), string(res.Action), "", 0
	st.InstalledSerial = facts.Serial
	st.NextAttempt = time.Time{}
	res.HookErrs = a.deploy(ctx, log, c, v, facts)
	a.recordDeploy(&st, facts, res.HookErrs)
	if c.ARI { // the new certificate's window, so the next wake-up follows the CA
		a.fetchARI(ctx, log, c, facts, a.issuer(Inspection{CA: bundle.Directory}), &st)
	}
	a.checkNotDueAtOnce(log, c, facts, &st, in.State.Failures)
	if err := a.saveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
		res.StoreErr = errors.Join(res.StoreErr, fmt.Errorf("save state: %w", err))
	}
	return res
}

// installBundle installs b as c's new live version and reads it back. A
// storage problem after the swap (an fsync, pruning) goes to res.StoreErr:
// the new version is live all the same.
func (a *Agent) installBundle(log *slog.Logger, c config.Certificate, b store.Bundle, res *Result) (*store.Version, *certinfo.Facts, error) {
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
// due again the moment it is installed (a clock far off, a renew_before
// longer than the lifetime, a CA window already over) would otherwise be
// renewed on every pass. It is kept, and the next attempt backs off like a
// failure, loudly.
func (a *Agent) checkNotDueAtOnce(log *slog.Logger, c config.Certificate, f *certinfo.Facts, st *store.State, failures int) {
	now := a.now()
	d := plan.DecideARI(now, c, f, ariOf(c, f, *st))
	if !d.Due {
		return
	}
	st.Failures = failures + 1 // consecutive: each storm renewal backs off further
	st.LastError = fmt.Sprintf("the new certificate (valid %s to %s) is due again at once (%s): is this machine's clock right? is renew_before shorter than the lifetime?",
		f.NotBefore.UTC().Format(time.RFC3339), f.NotAfter.UTC().Format(time.RFC3339), d.Reason)
	st.NextAttempt = now.Add(a.backoff.Delay(st.Failures, now, f.NotAfter, a.rnd()))
	log.Error("renewal storm averted", "err", st.LastError, "next_attempt", st.NextAttempt.UTC().Format(time.RFC3339))
}

// recordDeploy notes the outcome of deploying the live certificate: applied
// only when every deploy step (install copies, hooks, verification)
// succeeded for its serial; else a failure, retried with backoff without a
// new certificate, and shown by status until then.
func (a *Agent) recordDeploy(st *store.State, f *certinfo.Facts, errs []error) {
	if len(errs) == 0 {
		st.AppliedSerial, st.LastError, st.Failures, st.NextAttempt, st.FailedStep = f.Serial, "", 0, time.Time{}, ""
		return
	}
	st.LastError = "not applied: " + errors.Join(errs...).Error()
	st.FailedStep = ""
	var se stepError
	if errors.As(errs[0], &se) {
		st.FailedStep = se.step
	}
	st.Failures++
	st.NextAttempt = a.now().Add(a.backoff.Delay(st.Failures, a.now(), f.NotAfter, a.rnd()))
}

// Deploy steps, as State.FailedStep names the one that failed.
const (
	StepInstall = "install"
	StepHook    = "hook"
	StepVerify  = "verify"
)

// stepError is a deploy error with the step it happened in; its text is
// the error's own.
type stepError struct {
	step string
	err  error
}

func (e stepError) Error() string { return e.err.Error() }
func (e stepError) Unwrap() error { return e.err }

// HasDeploySteps reports whether c has anything to do after an install:
// copies to an install target, hooks, or endpoints to verify.
func HasDeploySteps(c config.Certificate) bool {
	return c.Install != nil || len(c.Hooks) > 0 || len(c.Verify) > 0
}

// hooksPending: the live certificate was installed but not all of its
// deploy steps (install copies, hooks, verification) have succeeded for it
// yet: a failed reload, a mismatch at an endpoint, or a crash in between.
func (a *Agent) hooksPending(in Inspection) bool {
	return in.Facts != nil && HasDeploySteps(in.Cert) && in.State.AppliedSerial != in.Facts.Serial
}

// retryHooks deploys the live certificate again without obtaining a new one.
func (a *Agent) retryHooks(ctx context.Context, log *slog.Logger, c config.Certificate, in Inspection, res Result) Result {
	log.Info("deploy of the live certificate not yet applied; retrying", "serial", in.Facts.Serial)
	res.Action, res.Serial, res.NotAfter, res.Version = Applied, in.Facts.Serial, in.Facts.NotAfter, in.Live.ID
	res.HookErrs = a.deploy(ctx, log, c, in.Live, in.Facts)
	st := in.State
	st.LastAttempt = a.now()
	a.recordDeploy(&st, in.Facts, res.HookErrs)
	if err := a.saveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
		res.StoreErr = fmt.Errorf("save state: %w", err)
	}
	return res
}

// deploy puts version v (whose facts are f) into service: it writes the
// install target, then runs every hook in order, then checks every verify
// endpoint. A step runs only when the steps before it succeeded: hooks do
// not reload files that were not written, and an endpoint is not checked
// after a failed reload. Nothing here undoes the install.
func (a *Agent) deploy(ctx context.Context, log *slog.Logger, c config.Certificate, v *store.Version, f *certinfo.Facts) []error {
	errs := a.deploySteps(ctx, log, c, v, f)
	switch {
	case len(errs) > 0:
		log.Error("certificate not applied; the deploy is retried on the next run", "serial", f.Serial)
	case HasDeploySteps(c):
		log.Info("certificate applied", "serial", f.Serial)
	}
	return errs
}

func (a *Agent) deploySteps(ctx context.Context, log *slog.Logger, c config.Certificate, v *store.Version, f *certinfo.Facts) []error {
	if in := c.Install; in != nil {
		t := store.Target{
			Dir: in.Dir, HAProxyBundle: in.HAProxyBundle,
			Chown: in.UID >= 0 || in.GID >= 0, UID: in.UID, GID: in.GID,
			CertMode: in.CertMode, KeyMode: in.KeyMode,
		}
		var where []any
		if in.Dir != "" {
			where = append(where, "dir", in.Dir)
		}
		if in.HAProxyBundle != "" {
			where = append(where, "haproxy_bundle", in.HAProxyBundle)
		}
		if err := a.store.WriteTarget(v, t); err != nil {
			log.Error("install failed", append(where, "err", err)...)
			return []error{stepError{StepInstall, fmt.Errorf("install: %w", err)}}
		}
		log.Info("installed", where...)
	}
	var errs []error
	env := HookEnv(c, v, f)
	for _, h := range c.Hooks {
		err := hook.Run(ctx, log, h, env)
		a.obs.HookRan(c.Name, h.Name, err)
		if err != nil {
			errs = append(errs, stepError{StepHook, err})
		}
	}
	if len(errs) > 0 {
		if len(c.Verify) > 0 {
			log.Warn("served certificate not verified: a hook failed")
		}
		return errs
	}
	for _, vb := range c.Verify {
		if err := verify.Wait(ctx, log, vb, f.Leaf); err != nil {
			errs = append(errs, stepError{StepVerify, fmt.Errorf("verify %s: %w", vb.Endpoint, err)})
		}
	}
	return errs
}

// HookEnv is the RENEWER_* environment a hook sees.
func HookEnv(c config.Certificate, v *store.Version, f *certinfo.Facts) map[string]string {
	env := map[string]string{
		"RENEWER_NAME":      c.Name,
		"RENEWER_DOMAINS":   strings.Join(c.Domains, " "),
		"RENEWER_CERT":      v.Cert,
		"RENEWER_CHAIN":     v.Chain,
		"RENEWER_FULLCHAIN": v.Fullchain,
		"RENEWER_KEY":       v.Key,
		"RENEWER_VERSION":   v.ID,
		"RENEWER_SERIAL":    f.Serial,
		"RENEWER_NOT_AFTER": f.NotAfter.UTC().Format(time.RFC3339),
	}
	if c.Install != nil {
		if c.Install.Dir != "" {
			env["RENEWER_INSTALL_DIR"] = c.Install.Dir
		}
		if c.Install.HAProxyBundle != "" {
			env["RENEWER_HAPROXY_BUNDLE"] = c.Install.HAProxyBundle
		}
	}
	return env
}

func (a *Agent) fail(log *slog.Logger, c config.Certificate, res Result, dryRun bool, err error) Result {
	res.Action, res.Err = Failed, err
	log.Error("renewal failed", "err", err, "dry_run", dryRun)
	// A dry run records nothing; neither does work cut short by shutdown,
	// which is no fault of the CA's or the certificate's.
	if dryRun || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return res
	}
	st, lerr := a.loadState(c.Name)
	if lerr != nil {
		log.Warn("state unreadable; starting it afresh", "err", lerr)
	}
	st.LastAttempt, st.LastResult, st.LastError = a.now(), string(Failed), err.Error()
	st.Failures++
	var notAfter time.Time
	if f, _ := a.liveFacts(c.Name); f != nil {
		notAfter = f.NotAfter
	}
	delay := a.backoff.Delay(st.Failures, a.now(), notAfter, a.rnd())
	if ra, ok := acme.RetryAfter(err); ok && ra > delay {
		delay = ra
	}
	st.NextAttempt = a.now().Add(delay)
	log.Info("will retry", "at", st.NextAttempt.UTC().Format(time.RFC3339), "failures", st.Failures)
	if serr := a.saveState(c.Name, st); serr != nil {
		log.Error("could not save state; the retry time is kept in memory", "err", serr)
		res.StoreErr = fmt.Errorf("save state: %w", serr)
	}
	return res
}

func (a *Agent) obtain(ctx context.Context, c config.Certificate, dryRun bool, in Inspection, mayReuse bool) (*acme.Certificate, error) {
	var clients []*acme.Client
	seen := map[string]bool{}
	for _, ca := range a.cfg.ACME.CAs() {
		if dryRun {
			ca.Directory = ca.StagingDirectory
		}
		if seen[ca.Directory] {
			continue
		}
		seen[ca.Directory] = true
		client, err := a.client(ctx, ca)
		if err != nil {
			return nil, err
		}
		clients = append(clients, client)
	}
	req := Request(c)
	if c.ReuseKey && mayReuse && in.Facts != nil && in.Facts.KeyMatches && in.Facts.KeyType == c.KeyType && in.Live != nil {
		key, err := os.ReadFile(in.Live.Key)
		if err != nil {
			return nil, fmt.Errorf("reuse_key: %w", err)
		}
		req.ReuseKey = key
	}
	// Only the CA that issued the live certificate knows it, and it accepts
	// "replaces" only from the account that ordered it (not after the
	// e-mail, and so the account, changed).
	if issuer := a.issuer(in).Directory; !dryRun && in.Account == acme.AccountKey(issuer, a.cfg.ACME.Email) {
		req.Replaces, req.ReplacesAt = replaces(in), issuer
	}
	return acme.ObtainFrom(ctx, a.log.With("cert", c.Name), clients, req)
}

// Request is the ACME request of certificate c (without a key to reuse).
func Request(c config.Certificate) acme.Request {
	req := acme.Request{Domains: c.Domains, KeyType: c.KeyType, Profile: c.Profile}
	switch c.Challenge.Type {
	case config.ChallengeTLSALPN:
		req.TLSListen = c.Challenge.Listen
	case config.ChallengeDNS:
		req.DNS = dnsRequest(c.Challenge.DNS)
	default:
		req.Listen, req.Webroot = c.Challenge.Listen, c.Challenge.Webroot
	}
	return req
}

func dnsRequest(d *config.DNS) *acme.DNSRequest {
	if d == nil {
		return &acme.DNSRequest{}
	}
	return &acme.DNSRequest{
		Provider: d.Provider, Env: d.Env, Resolvers: d.Resolvers,
		PropagationTimeout: d.PropagationTimeout, PollingInterval: d.PollingInterval,
	}
}

// CheckCredentials builds the DNS provider of every certificate that uses
// the dns challenge, contacting no CA, and returns one error per
// certificate whose provider cannot be built (unknown, missing credentials),
// each starting with file:line:col of its challenge block.
func CheckCredentials(cfg *config.Config) []error {
	var errs []error
	for _, c := range cfg.Certificates {
		if c.Challenge.Type != config.ChallengeDNS || c.Challenge.DNS == nil {
			continue
		}
		if err := acme.CheckDNS(*dnsRequest(c.Challenge.DNS)); err != nil {
			r := c.Challenge.DNS.Range
			errs = append(errs, fmt.Errorf("%s:%d:%d: certificate %q: %w", r.Filename, r.Start.Line, r.Start.Column, c.Name, err))
		}
	}
	return errs
}

// issuer is the configured CA that issued the live certificate (recorded in
// its meta.json), or the first CA when that is unknown.
func (a *Agent) issuer(in Inspection) config.CA {
	cas := a.cfg.ACME.CAs()
	for _, ca := range cas {
		if in.CA != "" && ca.Directory == in.CA {
			return ca
		}
	}
	return cas[0]
}

// client returns the ACME client of one CA, made on first use.
func (a *Agent) client(ctx context.Context, ca config.CA) (*acme.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[ca.Directory]; c != nil {
		return c, nil
	}
	accDir, err := a.store.AccountDir(acme.AccountKey(ca.Directory, a.cfg.ACME.Email))
	if err != nil {
		return nil, err
	}
	o := acme.Options{
		Directory:      ca.Directory,
		Email:          a.cfg.ACME.Email,
		AcceptTerms:    a.cfg.ACME.AcceptTerms,
		CABundle:       ca.CABundle,
		AccountDir:     accDir,
		UserAgent:      "renewer/" + a.version,
		Log:            a.log,
		Now:            a.now,
		PreferredChain: ca.PreferredChain,
		TLSSolver:      a.tlsSolver,
	}
	if ca.EAB != nil {
		o.EAB = &acme.EAB{KID: ca.EAB.KID, HMAC: ca.EAB.HMAC}
	}
	c, err := acme.New(o, a.solver)
	if err != nil {
		return nil, err
	}
	if a.fleet != nil { // every node orders with the fleet's account, before it loads one
		if err := a.fleet.SyncAccount(ctx, filepath.Base(accDir), accDir, c.Register); err != nil {
			return nil, fmt.Errorf("fleet account: %w", err)
		}
	}
	a.clients[ca.Directory] = c
	return c, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Wakes lists, for each certificate, the next moment it needs the daemon:
// its retry time while backing off, now when it is due or its hooks are
// pending, else its renewal time.
func (a *Agent) Wakes() []schedule.Wake {
	now := a.now()
	wakes := make([]schedule.Wake, len(a.cfg.Certificates))
	a.inspectEach(a.cfg.Certificates, func(i int, in Inspection) {
		c := in.Cert
		w := schedule.Wake{Name: c.Name, At: in.Decision.At, Reason: "renewal: " + string(in.Decision.Reason)}
		if c.ARI && in.State.ARI != nil && in.Facts != nil && in.State.ARI.NextFetch.Before(w.At) {
			w = schedule.Wake{Name: c.Name, At: in.State.ARI.NextFetch, Reason: "refresh renewal information"}
		}
		switch {
		case in.State.NextAttempt.After(now):
			w = schedule.Wake{Name: c.Name, At: in.State.NextAttempt, Reason: "retry after failure", Exact: true}
		case in.Decision.Due || a.hooksPending(in):
			w = schedule.Wake{Name: c.Name, At: now, Reason: "due", Exact: true}
			if until := a.heldOff(c.Name); until.After(now) && !a.hooksPending(in) {
				w = schedule.Wake{Name: c.Name, At: until, Reason: "renewing on another node", Exact: true}
			}
		}
		wakes[i] = w
	})
	return wakes
}
