package store

import (
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/certinfo/certtest"
)

// Issue 14 #10: serials are written as openssl prints them (032B47…);
// state and meta.json written before hold the old form (32b47…, no
// leading zero, lowercase). Loading them gives the new form, so an upgrade
// neither makes every certificate look unapplied nor its ARI answer stale.
func TestSerialsOfOlderFormNormalizedOnLoad(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	full, key := certtest.Issue(t, certtest.Options{
		Names: []string{"a.example"}, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(90 * 24 * time.Hour),
		Serial: big.NewInt(0x32b47f1a2),
	})
	v, err := s.Install("a", []string{"a.example"}, split(t, full, key), t0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := certinfo.Load(v.Fullchain, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	if f.Serial != "032B47F1A2" {
		t.Fatalf("live serial %q, want openssl's 032B47F1A2", f.Serial)
	}
	m, err := ReadMeta(v)
	if err != nil || m.Serial != f.Serial {
		t.Errorf("meta.json serial %q (%v), want %q", m.Serial, err, f.Serial)
	}

	// meta.json and state as renewer wrote them before.
	old := `{"name":"a","serial":"32b47f1a2","not_after":"2027-01-01T00:00:00Z","domains":["a.example"],"installed_at":"2026-11-23T08:20:00Z"}`
	if err := os.WriteFile(filepath.Join(v.Dir, MetaFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadMeta(v); err != nil || m.Serial != f.Serial {
		t.Errorf("older meta.json: serial %q (%v), want %q", m.Serial, err, f.Serial)
	}
	oldState := `{"installed_serial":"32b47f1a2","applied_serial":"32b47f1a2","adopted_serial":"32b47f1a2","ari":{"serial":"32b47f1a2"}}`
	if err := os.WriteFile(s.statePath("a"), []byte(oldState), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadState("a")
	if err != nil {
		t.Fatal(err)
	}
	for field, got := range map[string]string{"installed_serial": st.InstalledSerial, "applied_serial": st.AppliedSerial,
		"adopted_serial": st.AdoptedSerial, "ari.serial": st.ARI.Serial} {
		if got != f.Serial {
			t.Errorf("older state's %s loads as %q, want %q", field, got, f.Serial)
		}
	}
}
