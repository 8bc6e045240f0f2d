package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
)

// State is what renewer remembers about one certificate between runs.
type State struct {
	LastAttempt     time.Time `json:"last_attempt,omitzero"`
	LastResult      string    `json:"last_result,omitempty"` // "renewed", "failed", "skipped"...
	LastError       string    `json:"last_error,omitempty"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	Failures        int       `json:"failures,omitempty"` // consecutive
	NextAttempt     time.Time `json:"next_attempt,omitzero"`
	InstalledSerial string    `json:"installed_serial,omitempty"`
	AppliedSerial   string    `json:"applied_serial,omitempty"` // hooks all succeeded for this serial
	FailedStep      string    `json:"failed_step,omitempty"`    // deploy step that failed last: install, hook or verify
	ARI             *ARIState `json:"ari,omitempty"`
	// AdoptedSerial: this serial was adopted from another client (renewer
	// import certbot), so another ACME account ordered it; an ARI
	// "replaces" naming it would be refused by the CA.
	AdoptedSerial string `json:"adopted_serial,omitempty"`
	// RevokedSerial: renewer revoked this serial (renewer revoke); while it
	// is live the certificate is critical and due.
	RevokedSerial string `json:"revoked_serial,omitempty"`
}

// The values of State.LastResult.
const (
	ResultRenewed    = "renewed"
	ResultObtained   = "obtained" // first issuance
	ResultSynced     = "applied from fleet"
	ResultFailed     = "failed"
	ResultNotApplied = "not applied" // installed, a deploy step failed; retried without a new certificate
	ResultApplied    = "deploy retried"
	ResultRevoked    = "revoked"
	ResultAdopted    = "adopted from certbot"
)

// Deploy steps, as State.FailedStep names the one that failed (package
// deploy runs them).
const (
	StepInstall = "install"
	StepHook    = "hook"
	StepReload  = "reload"
	StepVerify  = "verify"
)

// StepDueAtOnce is State.FailedStep after a renewal storm was averted (the
// new certificate was due again at once): cleared as soon as the live
// certificate is no longer due (Settle).
const StepDueAtOnce = "due at once"

// State changes only through these transitions; nothing else writes its
// fields (ARI answers excepted: SetARI).

// Installed records a new live certificate: renewed, obtained or applied
// from the fleet (result). Its deploy is still to come (Deployed,
// DeployFailed).
func (st *State) Installed(now time.Time, serial, result string) {
	st.LastAttempt, st.LastSuccess, st.LastResult, st.LastError = now, now, result, ""
	st.Failures, st.NextAttempt, st.FailedStep = 0, time.Time{}, ""
	st.InstalledSerial = serial
}

// Failed records a failed attempt; next gives the retry time from the
// number of consecutive failures.
func (st *State) Failed(now time.Time, err string, next func(failures int) time.Time) {
	st.LastAttempt, st.LastResult, st.LastError, st.FailedStep = now, ResultFailed, err, ""
	st.Failures++
	st.NextAttempt = next(st.Failures)
}

// Deployed records that every deploy step succeeded for serial, the live
// certificate. retried: the deploy was redone without a new certificate.
func (st *State) Deployed(now time.Time, serial string, retried bool) {
	if retried || st.LastResult == ResultFailed || st.LastResult == ResultNotApplied {
		st.LastResult = ResultApplied
	}
	if retried {
		st.LastAttempt = now
	}
	st.InstalledSerial, st.AppliedSerial = serial, serial
	if st.FailedStep != StepDueAtOnce { // an averted storm holds until Settle
		st.LastError, st.Failures, st.NextAttempt, st.FailedStep = "", 0, time.Time{}, ""
	}
}

// DeployFailed records that a deploy step (install, hook, reload or verify)
// failed for serial, the live certificate: retried after next(failures)
// without a new certificate.
func (st *State) DeployFailed(now time.Time, serial, step, err string, next func(failures int) time.Time) {
	st.LastAttempt, st.LastResult, st.LastError, st.FailedStep = now, ResultNotApplied, "not applied: "+err, step
	st.InstalledSerial = serial
	st.Failures++
	st.NextAttempt = next(st.Failures)
}

// DueAtOnce records an averted renewal storm: the certificate just
// installed is due again at once (a clock far off, a CA window already
// over). The next attempt backs off like a failure, further after each
// storm in a row (prior: the failures counted before this renewal).
func (st *State) DueAtOnce(err string, prior int, next func(failures int) time.Time) {
	st.LastError, st.FailedStep = err, StepDueAtOnce
	st.Failures = prior + 1
	st.NextAttempt = next(st.Failures)
}

// Settle clears an averted storm once its cause is gone (the live
// certificate is not due); it reports whether it changed anything.
func (st *State) Settle() bool {
	if st.FailedStep != StepDueAtOnce {
		return false
	}
	st.LastError, st.FailedStep, st.Failures, st.NextAttempt = "", "", 0, time.Time{}
	return true
}

// Revoked records that renewer revoked serial at the CA.
func (st *State) Revoked(now time.Time, serial string) {
	st.LastAttempt, st.LastResult, st.LastError = now, ResultRevoked, ""
	st.RevokedSerial = serial
}

// Adopted records a certificate taken over from another client (renewer
// import certbot): installed and applied there already; another account
// ordered it.
func (st *State) Adopted(now time.Time, serial string) {
	st.InstalledSerial, st.AppliedSerial, st.AdoptedSerial = serial, serial, serial
	st.LastResult, st.LastSuccess, st.LastAttempt, st.LastError = ResultAdopted, now, now, ""
}

// SetARI records the CA's latest renewal-information answer.
func (st *State) SetARI(a *ARIState) { st.ARI = a }

// ARIState is the CA's renewal window (RFC 9773) for one serial, and the
// moment renewer chose in it, kept so that a restart neither re-asks the CA
// before it said to nor moves the chosen moment.
type ARIState struct {
	Serial      string    `json:"serial"`                // the certificate this answer is about
	Unsupported bool      `json:"unsupported,omitempty"` // the CA offers no ARI
	Start       time.Time `json:"window_start,omitzero"` // suggested window
	End         time.Time `json:"window_end,omitzero"`   //
	Chosen      time.Time `json:"chosen,omitzero"`       // random moment in the window, chosen once per window
	Explanation string    `json:"explanation,omitempty"` // the CA's explanation URL
	FetchedAt   time.Time `json:"fetched_at,omitzero"`   // last successful answer
	NextFetch   time.Time `json:"next_fetch,omitzero"`   // when to ask again
	Error       string    `json:"error,omitempty"`       // last failed fetch
}

func (s *Store) statePath(name string) string {
	return filepath.Join(s.root, "state", name+".json")
}

// LoadState reads state/<name>.json. A missing file yields the zero State.
func (s *Store) LoadState(name string) (State, error) {
	var st State
	if err := validName(name); err != nil {
		return st, err
	}
	path := s.statePath(name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("store: load state: %w", err)
	}
	st, err = decodeState(data)
	if err != nil {
		return State{}, fmt.Errorf("store: load state %s: %w", path, err)
	}
	return st, nil
}

// decodeState is LoadState's decoder: whatever it accepts, encodeState can
// write back (FuzzState checks it).
func decodeState(data []byte) (State, error) {
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, err
	}
	// Serials in the form renewer writes them now (state written before
	// holds them lowercase, without a leading zero), so that comparing them
	// with a certificate's serial holds across an upgrade.
	for _, p := range []*string{&st.InstalledSerial, &st.AppliedSerial, &st.AdoptedSerial, &st.RevokedSerial} {
		*p = certinfo.NormalizeSerial(*p)
	}
	if st.ARI != nil {
		st.ARI.Serial = certinfo.NormalizeSerial(st.ARI.Serial)
	}
	return st, nil
}

// encodeState is SaveState's encoder.
func encodeState(st State) ([]byte, error) {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// SaveState replaces state/<name>.json atomically (0600).
func (s *Store) SaveState(name string, st State) error {
	if err := validName(name); err != nil {
		return err
	}
	data, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("store: save state %s: %w", name, err)
	}
	path := s.statePath(name)
	if err := writeAtomic(s.fs, path, data, 0o600); err != nil {
		return fmt.Errorf("store: save state %s: %w", path, err)
	}
	return nil
}
