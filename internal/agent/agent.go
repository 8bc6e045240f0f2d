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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/hook"
	"github.com/renewer/renewer/internal/plan"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/verify"
)

// DefaultConcurrency bounds how many certificates are obtained at once.
const DefaultConcurrency = 4

// Agent works on one configuration.
type Agent struct {
	cfg         *config.Config
	store       *store.Store
	log         *slog.Logger
	now         func() time.Time
	solver      *acme.HTTPSolver
	concurrency int
	version     string

	mu      sync.Mutex
	clients map[string]*acme.Client // by directory URL
}

// Options wire an Agent. Zero values get defaults.
type Options struct {
	Log         *slog.Logger
	Now         func() time.Time
	Concurrency int
	Version     string // for the ACME User-Agent
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
		o.Concurrency = DefaultConcurrency
	}
	st, err := store.Open(cfg.Storage.Path, cfg.Storage.KeepVersions)
	if err != nil {
		return nil, fmt.Errorf("open storage: %w", err)
	}
	return &Agent{
		cfg: cfg, store: st, log: o.Log, now: o.Now, concurrency: o.Concurrency, version: o.Version,
		solver:  acme.NewHTTPSolver(o.Log),
		clients: map[string]*acme.Client{},
	}, nil
}

// Close releases listeners still open.
func (a *Agent) Close() { a.solver.Close() }

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
		return nil, fmt.Errorf("no certificate named %s in %s", strings.Join(unknown, ", "), a.cfg.File)
	}
	return out, nil
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
	case !errors.Is(err, store.ErrNotFound):
		in.Problem = err
	}
	in.Decision = plan.Decide(now, c, in.Facts)
	in.Health = plan.Assess(now, c, in.Facts)
	in.State, err = a.store.LoadState(c.Name)
	if err != nil && in.Problem == nil {
		in.Problem = err
	}
	return in
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
}

// OK reports whether the result needs no attention.
func (r Result) OK() bool { return r.Err == nil && len(r.HookErrs) == 0 }

// PassOptions shape one pass.
type PassOptions struct {
	Force  bool     // renew even when not due
	DryRun bool     // obtain from the staging twin, install nothing, run no hooks
	Names  []string // only these certificates (all when empty)
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
	sem := make(chan struct{}, a.concurrency)
	var wg sync.WaitGroup
	for i, c := range certs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				results[i] = a.renewOne(ctx, c, o)
			case <-ctx.Done():
				results[i] = Result{Name: c.Name, Action: Failed, Err: ctx.Err()}
			}
		})
	}
	wg.Wait()
	return results, nil
}

func (a *Agent) renewOne(ctx context.Context, c config.Certificate, o PassOptions) Result {
	log := a.log.With("cert", c.Name)
	res := Result{Name: c.Name}

	// Check, lock, check again: a concurrent `renew` or the daemon may have
	// renewed it while we waited for the lock.
	if in := a.Inspect(c); !o.Force && !in.Decision.Due && !a.hooksPending(in) {
		res.Action, res.Decision = Skipped, in.Decision
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

	log.Info("renewing", "reason", string(res.Decision.Reason), "domains", c.Domains, "dry_run", o.DryRun)
	bundle, err := a.obtain(ctx, c, o.DryRun)
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

	v, err := a.store.Install(c.Name, c.Domains, store.Bundle{Cert: bundle.Cert, Chain: bundle.Chain, Key: bundle.Key}, a.now())
	if v == nil {
		return a.fail(log, c, res, false, fmt.Errorf("install: %w", err))
	}
	if err != nil { // live already swapped; only pruning old versions failed
		log.Warn("could not prune old versions", "err", err)
	}
	facts, err := certinfo.Load(v.Fullchain, v.Key)
	if err != nil {
		return a.fail(log, c, res, false, fmt.Errorf("read installed certificate: %w", err))
	}
	res.Action, res.Serial, res.NotAfter, res.Version = Renewed, facts.Serial, facts.NotAfter, v.ID
	if in.Facts == nil {
		res.Action = Obtained
	}
	log.Info("certificate installed", "serial", facts.Serial, "not_after", facts.NotAfter.UTC().Format(time.RFC3339), "version", v.ID)

	st := in.State
	st.LastAttempt, st.LastSuccess, st.LastResult, st.LastError, st.Failures = a.now(), a.now(), string(res.Action), "", 0
	st.InstalledSerial = facts.Serial
	res.HookErrs = a.deploy(ctx, log, c, v, facts)
	a.recordDeploy(&st, facts, res.HookErrs)
	if err := a.store.SaveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
	}
	return res
}

// recordDeploy notes the outcome of deploying the live certificate: applied
// only when every deploy step (install copies, hooks, verification)
// succeeded for its serial; else a failure, retried on the next run without
// a new certificate, and shown by status until then.
func (a *Agent) recordDeploy(st *store.State, f *certinfo.Facts, errs []error) {
	if len(errs) == 0 {
		st.AppliedSerial, st.LastError, st.Failures = f.Serial, "", 0
		return
	}
	st.LastError = "not applied: " + errors.Join(errs...).Error()
	st.Failures++
}

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
	if err := a.store.SaveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
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
		if err := store.WriteTarget(v, t); err != nil {
			log.Error("install failed", append(where, "err", err)...)
			return []error{fmt.Errorf("install: %w", err)}
		}
		log.Info("installed", where...)
	}
	var errs []error
	env := HookEnv(c, v, f)
	for _, h := range c.Hooks {
		if err := hook.Run(ctx, log, h, env); err != nil {
			errs = append(errs, err)
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
			errs = append(errs, fmt.Errorf("verify %s: %w", vb.Endpoint, err))
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
	if dryRun {
		return res
	}
	st, lerr := a.store.LoadState(c.Name)
	if lerr != nil {
		log.Warn("state unreadable; starting it afresh", "err", lerr)
	}
	st.LastAttempt, st.LastResult, st.LastError = a.now(), string(Failed), err.Error()
	st.Failures++
	if serr := a.store.SaveState(c.Name, st); serr != nil {
		log.Error("could not save state", "err", serr)
	}
	return res
}

func (a *Agent) obtain(ctx context.Context, c config.Certificate, dryRun bool) (*acme.Certificate, error) {
	dir := a.cfg.ACME.Directory
	if dryRun {
		dir = a.cfg.ACME.StagingDirectory
	}
	client, err := a.client(dir)
	if err != nil {
		return nil, err
	}
	return client.Obtain(ctx, acme.Request{
		Domains: c.Domains,
		KeyType: c.KeyType,
		Listen:  c.Challenge.Listen,
		Webroot: c.Challenge.Webroot,
	})
}

// client returns the ACME client of one directory, made on first use.
func (a *Agent) client(directory string) (*acme.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[directory]; c != nil {
		return c, nil
	}
	accDir, err := a.store.AccountDir(acme.AccountKey(directory, a.cfg.ACME.Email))
	if err != nil {
		return nil, err
	}
	c, err := acme.New(acme.Options{
		Directory:   directory,
		Email:       a.cfg.ACME.Email,
		AcceptTerms: a.cfg.ACME.AcceptTerms,
		CABundle:    a.cfg.ACME.CABundle,
		AccountDir:  accDir,
		UserAgent:   "renewer/" + a.version,
		Log:         a.log,
		Now:         a.now,
	}, a.solver)
	if err != nil {
		return nil, err
	}
	a.clients[directory] = c
	return c, nil
}
