package status

import (
	"slices"
	"time"

	"github.com/renewer/renewer/internal/plan"
)

// Action says what a pass did with one certificate.
type Action string

// Actions.
const (
	Skipped  Action = "not due"
	Renewed  Action = "renewed"
	Obtained Action = "obtained" // first issuance
	DryRun   Action = "dry run ok"
	Applied  Action = "deploy retried" // install copies, hooks, reloads and verification redone for the live certificate
	Failed   Action = "failed"
	Waiting  Action = "backing off" // failed before; next attempt not yet
	Stopped  Action = "not started" // the daemon is shutting down
	// Fleet mode:
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
	HookErrs []error // deploy steps that failed after a successful install: install copies, hooks, reloads, verification
	// StoreErr: the storage could not record the outcome (a full or failing
	// disk): the state file (kept in memory until it can be written, so a
	// backoff holds) or, after a new version went live, the fsync of live/
	// or pruning.
	StoreErr error
	// Interrupted: the pass's own context ended (shutdown) while the
	// certificate was worked on. Its failure is not recorded in state nor
	// counted: no fault of the CA's or the certificate's. A deadline of a
	// request (to etcd, to the CA) is not an interruption.
	Interrupted bool
}

// OK reports whether the result needs no attention.
func (r Result) OK() bool { return r.Err == nil && len(r.HookErrs) == 0 && r.StoreErr == nil }

// Errs is every error of the result, nil ones left out.
func (r Result) Errs() []error {
	return slices.DeleteFunc(append([]error{r.Err, r.StoreErr}, r.HookErrs...), func(e error) bool { return e == nil })
}

// Installed reports whether the pass put a new certificate live.
func (r Result) Installed() bool {
	return r.Action == Renewed || r.Action == Obtained || r.Action == Synced
}
