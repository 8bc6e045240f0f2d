package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/deploy"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Fleet mode: the agent's side of store.Shared. One node renews a
// certificate for the whole fleet (the one holding its lock), publishes the
// new version, then installs it; every other node sees the new version
// (through a watch, or at its next pass), installs it into its own store
// and install targets, runs its own hooks and verifies its own endpoints,
// exactly as after a renewal of its own. Each node reports the serial it
// serves, so status on any node shows the whole fleet.

// Fleet is the shared storage of the fleet this agent belongs to; nil for
// a single node.
func (a *Agent) Fleet() store.Shared { return a.fleet }

// ServeChallenges opens the standalone HTTP-01 listeners of every
// certificate now and keeps them open, so this node answers challenges
// another node of the fleet started (the CA may reach any node behind a
// load balancer), from a cache of the fleet's tokens that a watch keeps
// filled. The daemon calls it in fleet mode.
func (a *Agent) ServeChallenges() error {
	if s, ok := a.fleet.(interface{ ServeTokens() }); ok {
		s.ServeTokens() // the token cache, fed by its watch from now on
	}
	seen := map[string]bool{}
	var errs []error
	for _, c := range a.cfg.Certificates {
		addr := c.Challenge.Listen
		if c.Challenge.Type != config.ChallengeHTTP || addr == "" || seen[addr] {
			continue
		}
		seen[addr] = true
		if err := a.solver.Keep(addr); err != nil {
			errs = append(errs, fmt.Errorf("certificate %q: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// elsewhereRetry is how long the daemon leaves a certificate another node
// is renewing before it tries to take the lock itself (the holder may have
// died). A publication wakes it sooner, through the watch.
const elsewhereRetry = 5 * time.Second

func (a *Agent) holdOff(name string) {
	a.elsewhereMu.Lock()
	defer a.elsewhereMu.Unlock()
	if a.elsewhere == nil {
		a.elsewhere = map[string]time.Time{}
	}
	a.elsewhere[name] = a.now().Add(elsewhereRetry)
}

func (a *Agent) heldOff(name string) time.Time {
	a.elsewhereMu.Lock()
	defer a.elsewhereMu.Unlock()
	return a.elsewhere[name]
}

// fleetNewer returns the fleet's version of in's certificate when this
// node does not serve it yet, else nil. The fleet's version is the
// authority: a node only ever installs what it published first. When etcd
// cannot be read the node keeps what it has (logged; a due certificate then
// fails to claim its lock and is reported as failing).
//
// down, when not nil, is shared by the calls of one pass: after the first
// failure the others do not wait on etcd again (a pass over many
// certificates would otherwise wait a timeout for each).
func (a *Agent) fleetNewer(ctx context.Context, in status.View, down *atomic.Bool) *store.Published {
	if down != nil && down.Load() {
		return nil
	}
	p, err := a.fleet.Latest(ctx, in.Cert.Name)
	switch {
	case errors.Is(err, store.ErrWrongFleetKey):
		// Not an outage: this node's key_file is not the fleet's.
		a.log.Error("the fleet's version cannot be opened with this node's fleet key (is key_file the same file as on the other nodes?); keeping the installed certificate",
			"cert", in.Cert.Name, "err", err)
		return nil
	case err != nil:
		if first := down == nil || !down.Swap(true); first {
			a.log.Warn("fleet unreachable; keeping the installed certificates", "cert", in.Cert.Name, "err", err)
		}
		return nil
	}
	if p == nil || (in.Facts != nil && in.Facts.Serial == p.Serial) {
		return nil
	}
	if !a.covers(p, in.Cert) {
		// Published under another config (names changed on some nodes only).
		a.log.Warn("the fleet's version does not cover this node's domains; not applying it", "cert", in.Cert.Name, "serial", p.Serial)
		return nil
	}
	return p
}

// covers reports whether p is usable for c here: its names cover c's
// domains, its key matches, its chain verifies and it has not expired.
func (a *Agent) covers(p *store.Published, c config.Certificate) bool {
	f, err := certinfo.Parse(append(append([]byte{}, p.Bundle.Cert...), p.Bundle.Chain...), p.Bundle.Key)
	return err == nil && f.Check(c.Domains, a.now()) == nil
}

// applyShared installs p, the fleet's version of c, under the local lock,
// which it returns held with the deploy to do.
func (a *Agent) applyShared(ctx context.Context, c config.Certificate, p *store.Published) (status.Result, *toDeploy) {
	log := a.log.With("cert", c.Name)
	res := status.Result{Name: c.Name}
	unlock, err := a.store.Lock(ctx, c.Name)
	if err != nil {
		res.Action, res.Err = status.Failed, fmt.Errorf("lock: %w", err)
		return res, nil
	}
	in := a.Inspect(c)
	res.Decision = in.Decision
	if in.Facts != nil && in.Facts.Serial == p.Serial { // a concurrent pass applied it
		unlock()
		res.Action = status.Skipped
		return res, nil
	}
	defer unlock()
	return a.installShared(ctx, log, c, in, p, res)
}

// installShared installs the fleet's version p as a local renewal would,
// into the store, and returns its deploy to do; the local lock is held.
func (a *Agent) installShared(ctx context.Context, log *slog.Logger, c config.Certificate, in status.View, p *store.Published, res status.Result) (status.Result, *toDeploy) {
	log.Info("applying the fleet's new version", "serial", p.Serial, "from", p.Node)
	v, facts, err := a.installBundle(log, c, p.Bundle, &res)
	if err != nil {
		return a.fail(ctx, log, c, res, false, fmt.Errorf("the fleet's version %s: %w", p.Serial, err)), nil
	}
	res.Action, res.Serial, res.NotAfter, res.Version = status.Synced, facts.Serial, facts.NotAfter, v.ID
	st := in.State
	st.Installed(a.now(), facts.Serial, string(status.Synced))
	if err := a.saveState(c.Name, st); err != nil {
		log.Error("could not save state", "err", err)
		res.StoreErr = errors.Join(res.StoreErr, fmt.Errorf("save state: %w", err))
	}
	return res, &toDeploy{item: deploy.Item{Cert: c, Version: v, Facts: facts}}
}

// publish shares a newly obtained bundle with the fleet, fenced by claim.
// When it fails the bundle is not installed here either: a node serves only
// what the fleet has, so the nodes never diverge.
func (a *Agent) publish(ctx context.Context, c config.Certificate, claim store.Claim, b store.Bundle) error {
	f, err := certinfo.Parse(append(append([]byte{}, b.Cert...), b.Chain...), b.Key)
	if err != nil {
		return fmt.Errorf("issued certificate is unusable: %w", err)
	}
	if err := claim.Publish(ctx, store.Published{Name: c.Name, Serial: f.Serial, NotAfter: f.NotAfter, Bundle: b}); err != nil {
		return fmt.Errorf("publish to the fleet (not installed): %w", err)
	}
	return nil
}

// reportFleet records what this node now serves of c after a pass worked on
// it (fleetround.go builds the report). Errors are logged: reports are for
// status, not for the renewal.
func (a *Agent) reportFleet(ctx context.Context, c config.Certificate, res status.Result) {
	switch res.Action {
	case status.Skipped, status.Stopped, status.Waiting, status.Elsewhere:
		return
	}
	if err := a.putReport(ctx, c.Name, a.nodeReport(ctx, c, &res), 0); err != nil {
		a.log.Warn("could not report to the fleet", "cert", c.Name, "err", err)
	}
}
