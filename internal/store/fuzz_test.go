package store

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// FuzzState feeds arbitrary bytes to the state file decoder. It never
// panics; what it accepts, the encoder writes back, and that reads back to
// the same state (so a state file renewer accepted once never becomes one it
// cannot save, or reads differently after a save).
func FuzzState(f *testing.F) {
	// Real state files, as the agent writes them.
	for _, st := range []State{
		{},
		{
			LastAttempt: t0, LastResult: "renewed", LastSuccess: t0,
			InstalledSerial: "4f1a0c9e2b", AppliedSerial: "4f1a0c9e2b",
			ARI: &ARIState{
				Serial: "4f1a0c9e2b", Start: t0.Add(60 * 24 * time.Hour), End: t0.Add(62 * 24 * time.Hour),
				Chosen: t0.Add(61 * 24 * time.Hour), Explanation: "https://ca.example/why",
				FetchedAt: t0, NextFetch: t0.Add(6 * time.Hour),
			},
		},
		{
			LastAttempt: t0, LastResult: "failed", Failures: 3, NextAttempt: t0.Add(4 * time.Minute),
			LastError:       `install: store: install a: write privkey.pem: no space left on device`,
			InstalledSerial: "01", AppliedSerial: "00", FailedStep: "hook", AdoptedSerial: "00",
			ARI: &ARIState{Serial: "01", Unsupported: true, Error: "503"},
		},
	} {
		data, err := encodeState(st)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"last_attempt":"2026-11-23T08:20:00+05:45","failures":-1,"ari":null}`))
	f.Add([]byte(`{"next_attempt":"0000-01-01T00:00:00Z","ari":{"window_start":"9999-12-31T23:59:59.999999999Z"}}`))
	f.Add([]byte(`{not json`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		out, err := encodeState(st)
		if err != nil {
			t.Fatalf("accepted state cannot be saved: %v\ninput: %q", err, data)
		}
		back, err := decodeState(out)
		if err != nil {
			t.Fatalf("saved state cannot be read back: %v\nsaved: %s", err, out)
		}
		again, err := encodeState(back)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("state changed across save and load:\n%s\n%s (%v)", out, again, err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON written: %s", out)
		}
	})
}

// The state files the fuzz target's seeds stand for are what LoadState and
// SaveState read and write: the decoder is theirs.
func TestStateCodecIsLoadSave(t *testing.T) {
	clock := t0
	s := testStore(t, 1, &clock)
	want := State{LastAttempt: t0, LastResult: "failed", Failures: 2, LastError: "boom"}
	if err := s.SaveState("a", want); err != nil {
		t.Fatal(err)
	}
	data := readFile(t, filepath.Join(s.Root(), "state", "a.json"))
	enc, err := encodeState(want)
	if err != nil || !bytes.Equal(data, enc) {
		t.Fatalf("SaveState wrote %s, encodeState gives %s (%v)", data, enc, err)
	}
	got, err := decodeState(data)
	if err != nil || got != want {
		t.Fatalf("decodeState: %+v, %v", got, err)
	}
}
