package agent

import (
	"context"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
)

// Observer is the report stage: it is told what a pass does and sees, as
// plain values, and never calls back into the agent. HookRan is called as
// each hook or reload ends, from the pass's goroutines (implementations
// must be safe for that and return quickly); Finished with each
// certificate's result once the pass is over; PassDone with what the pass
// leaves of every certificate it covered (complete: every configured
// certificate, not a `renew NAME` subset). Dry runs report nothing. Package
// report implements it for logs, metrics and notifications.
type Observer interface {
	HookRan(cert, hook string, err error)
	Finished(r status.Result)
	PassDone(ctx context.Context, certs []status.View, complete bool)
}

type noObserver struct{}

func (noObserver) HookRan(string, string, error)                 {}
func (noObserver) Finished(status.Result)                        {}
func (noObserver) PassDone(context.Context, []status.View, bool) {}

// SetObserver replaces the observer (nil: nobody); call it before RunOnce.
func (a *Agent) SetObserver(o Observer) {
	if o == nil {
		o = noObserver{}
	}
	a.obs = o
}

// PassReporter is the daemon's Observer: made anew for each config, closed
// when replaced.
type PassReporter interface {
	Observer
	// Close waits, until ctx ends, for notifications under way.
	Close(ctx context.Context) error
}

// NewReporter makes the PassReporter of a config (the daemon makes a new
// one on each reload); st is the agent's store, whose file system the
// reporter writes its state through.
type NewReporter func(cfg *config.Config, st *store.Store) (PassReporter, error)
