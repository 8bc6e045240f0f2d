package agent

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/deploy"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// liveFacts reads the live certificate of name, if there is a readable one.
func (a *Agent) liveFacts(name string) (*certinfo.Facts, error) {
	v, err := a.store.Live(name)
	if err != nil {
		return nil, err
	}
	return certinfo.Load(v.Fullchain, v.Key)
}

// Inspect reads every file renewer wrote for c (the live version, the
// install copies) and its state, and assesses them (package status).
func (a *Agent) Inspect(c config.Certificate) status.View {
	return status.Of(a.inspect(c), a.now())
}

func (a *Agent) inspect(c config.Certificate) status.Inspection {
	in := status.Inspection{Cert: c}
	v, err := a.store.Live(c.Name)
	switch {
	case err == nil:
		in.Live = v
		in.Facts, in.Problem = certinfo.Load(v.Fullchain, v.Key)
		if in.Problem == nil {
			in.Problem = store.CheckVersion(v)
		}
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
	// The install copies are checked once they should hold the live
	// version (its deploy succeeded): before that, the deploy is pending
	// anyway.
	if in.Facts != nil && c.Install != nil && in.State.AppliedSerial == in.Facts.Serial {
		in.Targets = store.CheckTarget(v, deploy.TargetOf(c.Install))
	}
	return in
}

// inspectEach inspects each of certs and calls f with its index and
// inspection, several at once (f must be safe for that): reading and parsing
// each certificate and key is most of the work of a pass that renews nothing.
func (a *Agent) inspectEach(certs []config.Certificate, f func(int, status.View)) {
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
