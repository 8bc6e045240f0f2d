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
}

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
	for _, p := range []*string{&st.InstalledSerial, &st.AppliedSerial, &st.AdoptedSerial} {
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
