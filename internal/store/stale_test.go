package store

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Issue 14 #6: a kill -9 during an install leaves certs/NAME/.tmp-*
// (holding a private key), and during a swap or a state write a temp link
// or file. CleanStale, called under the certificate's lock on the next run,
// removes them: only those of this certificate, whatever their age (under
// the lock nobody else is writing them), and nothing else.
func TestCleanStaleAfterKill(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	v, err := s.Install("www", []string{"www.example"}, issue(t, "www.example"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Install("www.tmp-12345678", []string{"b.example"}, issue(t, "b.example"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState("www", State{LastResult: "renewed"}); err != nil {
		t.Fatal(err)
	}
	certs, live, state := filepath.Join(s.Root(), "certs"), filepath.Join(s.Root(), "live"), filepath.Join(s.Root(), "state")
	// What a killed Install leaves: a temp version directory with a key.
	crashed, err := os.MkdirTemp(filepath.Join(certs, "www"), tmpPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, KeyFile), []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		crashed,
		filepath.Join(live, ".www"+tmpPrefix+"0a1b2c3d"),        // a swap killed before its rename
		filepath.Join(state, ".www.json"+tmpPrefix+"123456789"), // a state write killed before its rename
	}
	if err := os.Symlink(filepath.Join("..", "certs", "www", v.ID), stale[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale[2], []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not this certificate's, or not renewer's: kept.
	other, err := os.MkdirTemp(filepath.Join(certs, "www.tmp-12345678"), tmpPrefix)
	if err != nil {
		t.Fatal(err)
	}
	keep := []string{
		other,
		filepath.Join(live, ".www.tmp-12345678"+tmpPrefix+"0a1b2c3d"), // the temp link of certificate "www.tmp-12345678"
		filepath.Join(certs, "www", "notes.txt"),
		filepath.Join(live, ".www"+tmpPrefix+"not-hex!"),
	}
	for _, p := range keep[1:] {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	removed, err := s.CleanStale("www")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("left behind: %s (%v)", p, err)
		}
		if !slices.Contains(removed, p) {
			t.Errorf("%s removed but not reported: %v", p, removed)
		}
	}
	for _, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("removed what is not a stale temp of www: %s (%v)", p, err)
		}
	}
	if l, err := s.Live("www"); err != nil || l.ID != v.ID {
		t.Errorf("live version after cleaning: %+v %v", l, err)
	}
	if st, err := s.LoadState("www"); err != nil || st.LastResult != "renewed" {
		t.Errorf("state after cleaning: %+v %v", st, err)
	}
	if removed, err := s.CleanStale("new"); err != nil || len(removed) != 0 {
		t.Errorf("a certificate never installed: %v %v", removed, err)
	}
}

// Issue 14 #6: a kill during the copy to an install target leaves
// ".privkey.pem.tmp-N" (a private key) and ".privkey.pem.tmp-N.old"
// beside the files servers read; CleanTarget removes them and nothing else.
func TestCleanTargetAfterKill(t *testing.T) {
	clock := t0
	s := testStore(t, 3, &clock)
	v, err := s.Install("www", []string{"www.example"}, issue(t, "www.example"), t0)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	tg := Target{Dir: filepath.Join(base, "ssl"), HAProxyBundle: filepath.Join(base, "haproxy", "www.pem")}
	if err := s.WriteTarget(v, tg); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		filepath.Join(tg.Dir, ".privkey.pem"+tmpPrefix+"123"),
		filepath.Join(tg.Dir, ".fullchain.pem"+tmpPrefix+"456.old"),
		filepath.Join(base, "haproxy", ".www.pem"+tmpPrefix+"789"),
	}
	keep := []string{
		filepath.Join(tg.Dir, ".other.pem"+tmpPrefix+"123"),      // not a file renewer writes here
		filepath.Join(tg.Dir, ".privkey.pem"+tmpPrefix+"12x"),    // not its temp name
		filepath.Join(base, "haproxy", ".api.pem"+tmpPrefix+"1"), // another certificate's bundle
	}
	for _, p := range append(append([]string{}, stale...), keep...) {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := CleanTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !os.IsNotExist(err) || !slices.Contains(removed, p) {
			t.Errorf("left behind: %s (%v; removed %v)", p, err, removed)
		}
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("removed %s: %v", p, err)
		}
	}
	for _, f := range []string{KeyFile, CertFile, ChainFile, FullchainFile} {
		if _, err := os.Stat(filepath.Join(tg.Dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(tg.HAProxyBundle); err != nil {
		t.Error(err)
	}
	if removed, err := CleanTarget(Target{Dir: filepath.Join(base, "never")}); err != nil || len(removed) != 0 {
		t.Errorf("target never written: %v %v", removed, err)
	}
}
