package agent

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/deploy"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Convergence in fleet mode. Each node reports, per certificate, what it
// installed, whether it deployed it and what its own verify endpoints
// serve; it reports again whenever that changes and at least every
// quarter of node_gone_after (a heartbeat: a node silent for
// node_gone_after is named gone). status.AssessFleet decides from those
// reports and the fleet's version whether the fleet converged; `status`,
// the daemon's fleet rounds (metrics, notifications) all read it.

// DefaultFleetEvery is how often the daemon looks at the fleet between
// passes (DaemonOptions.FleetEvery).
const DefaultFleetEvery = 30 * time.Second

// FleetObserver is an Observer that also hears the daemon's fleet rounds
// (package report implements it).
type FleetObserver interface {
	FleetObserved(s status.FleetSnapshot)
}

// lockHolders is the fleet backend's view of the renewal locks
// (internal/fleet implements it).
type lockHolders interface {
	LockHolders(ctx context.Context) (map[string]string, error)
}

// sentReport is the last report written of a certificate.
type sentReport struct {
	r  store.NodeReport
	at time.Time
}

// goneAfter is the config's node_gone_after.
func (a *Agent) goneAfter() time.Duration {
	if a.cfg.Fleet != nil && a.cfg.Fleet.NodeGoneAfter > 0 {
		return a.cfg.Fleet.NodeGoneAfter
	}
	return config.DefaultNodeGoneAfter
}

// nodeReport is what this node serves of c now: the installed serial,
// whether every deploy step succeeded for it, the error that keeps it from
// being applied (res's, after a pass, else the state's), and what each
// verify endpoint serves (looked at now).
func (a *Agent) nodeReport(ctx context.Context, c config.Certificate, res *status.Result) store.NodeReport {
	in := a.Inspect(c)
	r := store.NodeReport{At: a.now().UTC()}
	if in.Facts != nil {
		r.Serial, r.Applied, r.NotAfter = in.Facts.Serial, in.Applied, in.Facts.NotAfter.UTC()
		r.Verified = r.Applied && len(c.Verify) > 0
	}
	if in.Live != nil {
		r.Version = in.Live.ID
	}
	switch {
	case res != nil && !res.OK():
		r.Error = errors.Join(append([]error{res.Err}, res.HookErrs...)...).Error()
	case in.State.LastError != "" && (in.Failing || in.DeployPending):
		r.Error = in.State.LastError
	case in.Problem != nil:
		r.Error = in.Problem.Error()
	}
	r.Endpoints = deploy.Served(ctx, c)
	return r
}

// putReport writes r unless the last report written of name says the same
// and is younger than every (0: always write).
func (a *Agent) putReport(ctx context.Context, name string, r store.NodeReport, every time.Duration) error {
	a.reportMu.Lock()
	last, ok := a.reported[name]
	a.reportMu.Unlock()
	if ok && every > 0 && a.now().Sub(last.at) < every && sameReport(last.r, r) {
		return nil
	}

	if err := a.fleet.Report(ctx, name, r); err != nil {
		return err
	}
	a.reportMu.Lock()
	defer a.reportMu.Unlock()
	if a.reported == nil {
		a.reported = map[string]sentReport{}
	}
	a.reported[name] = sentReport{r: r, at: a.now()}
	return nil
}

// sameReport compares two reports but for when they were written.
func sameReport(x, y store.NodeReport) bool {
	x.At, y.At = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

// FleetCondition reads the fleet's version of name and every node's report
// and assesses them (status.AssessFleet) with this config's
// node_gone_after, at the agent's now.
func (a *Agent) FleetCondition(ctx context.Context, name string) (status.FleetCondition, error) {
	if a.fleet == nil {
		return status.FleetCondition{}, errors.New("not in fleet mode")
	}
	p, err := a.fleet.Latest(ctx, name)
	if err != nil {
		return status.FleetCondition{}, err
	}
	reps, err := a.fleet.Reports(ctx, name)
	if err != nil {
		return status.FleetCondition{}, err
	}
	return status.AssessFleet(status.FleetInput{Name: name, Version: p, Reports: reps, GoneAfter: a.goneAfter()}, a.now()), nil
}

// FleetRound is the daemon's look at the fleet between passes: it reports
// what this node serves of each certificate (written when that changed, or
// as a heartbeat every quarter of node_gone_after), then assesses every
// certificate's convergence, reads the renewal locks' holders and hands it
// all to the observer (a FleetObserver). The first etcd failure ends the
// round: the snapshot then carries the error.
func (a *Agent) FleetRound(ctx context.Context) status.FleetSnapshot {
	s := status.FleetSnapshot{Checked: a.now()}
	if a.fleet == nil {
		s.Err = errors.New("not in fleet mode")
		return s
	}
	s.Node = a.fleet.Node()
	every := a.goneAfter() / 4
	// Looking at the endpoints takes up to a few seconds each when one
	// does not answer: several certificates at once.
	certs := a.cfg.Certificates
	reports := make([]store.NodeReport, len(certs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(a.concurrency, 4), len(certs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(certs); i = int(next.Add(1) - 1) {
				reports[i] = a.nodeReport(ctx, certs[i], nil)
			}
		})
	}
	wg.Wait()
	for i, c := range certs {
		if err := a.putReport(ctx, c.Name, reports[i], every); err != nil {
			s.Err = err
			break
		}
	}
	for _, c := range a.cfg.Certificates {
		if s.Err != nil {
			break
		}
		k, err := a.FleetCondition(ctx, c.Name)
		if err != nil {
			s.Err = err
			break
		}
		s.Certificates = append(s.Certificates, k)
	}
	if lh, ok := a.fleet.(lockHolders); ok && s.Err == nil {
		s.Holders, s.Err = lh.LockHolders(ctx)
	}
	if s.Err != nil {
		s.Certificates = nil
		a.log.Debug("fleet round: the fleet could not be read", "err", s.Err)
	}
	if fo, ok := a.obs.(FleetObserver); ok {
		fo.FleetObserved(s)
	}
	return s
}

// FleetEvery is how often the daemon should run FleetRound: every, or
// more often when a quarter of node_gone_after is shorter (so the
// heartbeat is never late); 0 every means DefaultFleetEvery.
func (a *Agent) FleetEvery(every time.Duration) time.Duration {
	if every <= 0 {
		every = DefaultFleetEvery
	}
	return max(min(every, a.goneAfter()/4), 100*time.Millisecond)
}
