package agent

import (
	"context"

	"github.com/renewer/renewer/internal/config"
)

// Observer is told what a pass does: each hook run as it ends, each
// certificate's inspection as the pass leaves it, and each certificate's
// result once the pass is over (dry runs excepted). Package report
// implements it for metrics and notifications. HookRan and Inspected are
// called from the pass's goroutines: implementations must be safe for
// concurrent use and return quickly.
type Observer interface {
	HookRan(cert, hook string, err error)
	// Inspected gets the last inspection of each certificate of the pass:
	// the one the pass planned with when it had nothing to do, a fresh one
	// after it worked on the certificate. A reporter that uses these need
	// not read every certificate again after the pass.
	Inspected(in Inspection)
	Finished(r Result)
}

type noObserver struct{}

func (noObserver) HookRan(string, string, error) {}
func (noObserver) Inspected(Inspection)          {}
func (noObserver) Finished(Result)               {}

// SetObserver replaces the observer (nil: nobody); call it before RunOnce.
func (a *Agent) SetObserver(o Observer) {
	if o == nil {
		o = noObserver{}
	}
	a.obs = o
}

// PassReporter is what the daemon reports to after each pass: package
// report implements it (metrics, watches, notifications). It is an
// interface here because report imports agent.
type PassReporter interface {
	Observer
	// AfterPass inspects every certificate (and checks the watches when
	// due) and reports what it sees; call it after each RunOnce.
	AfterPass(ctx context.Context, a *Agent)
	// Close waits, until ctx ends, for notifications under way.
	Close(ctx context.Context) error
}

// NewReporter makes the PassReporter of a config (the daemon makes a new
// one on each reload).
type NewReporter func(cfg *config.Config) (PassReporter, error)
