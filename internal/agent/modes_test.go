package agent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// checkStoreModes walks the storage: every directory 0700, every key and
// every state, account and lock file 0600; certificates 0644 at most.
func checkStoreModes(t *testing.T, root, when string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil // live/<name>: a link's own mode means nothing
		}
		rel, _ := filepath.Rel(root, p)
		m := fi.Mode().Perm()
		n++
		switch {
		case fi.IsDir():
			if m != 0o700 {
				t.Errorf("%s: directory %s has mode %o, want 700", when, rel, m)
			}
		case d.Name() == "privkey.pem" || d.Name() == "key.pem" || strings.HasPrefix(rel, "state/") ||
			strings.HasPrefix(rel, "locks/") || d.Name() == "account.json":
			if m != 0o600 {
				t.Errorf("%s: %s has mode %o, want 600", when, rel, m)
			}
		default:
			if m&0o133 != 0 {
				t.Errorf("%s: %s has mode %o, want 644 or tighter", when, rel, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("%s: only %d entries under %s", when, n, root)
	}
}

func wantMode(t *testing.T, path string, want os.FileMode, when string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if m := fi.Mode().Perm(); m != want {
		t.Errorf("%s: %s has mode %o, want %o", when, path, m, want)
	}
}

// Keys stay private and the store's directories 0700 after the first
// issuance, after a renewal and after a deploy is redone for the live
// version (the path that re-installs a version already in the store):
// install copies get 0600 or the configured key_mode again, even when
// someone loosened them in between.
func TestModesAfterIssueRenewAndRedeploy(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	base := t.TempDir()
	dirA, dirB := filepath.Join(base, "ssl", "a"), filepath.Join(base, "ssl", "b")
	bundleB := filepath.Join(base, "haproxy", "b.pem")
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "a" {
  domains = ["modes-a.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { dir = %q }
}
certificate "b" {
  domains = ["modes-b.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install {
    dir            = %q
    haproxy_bundle = %q
    key_mode       = "0640"
  }
}`, ca.HTTPPort, dirA, ca.HTTPPort, dirB, bundleB))
	root := cfg.Storage.Path
	targets := func(when string) {
		t.Helper()
		wantMode(t, filepath.Join(dirA, "privkey.pem"), 0o600, when)
		wantMode(t, filepath.Join(dirA, "cert.pem"), 0o644, when)
		wantMode(t, filepath.Join(dirB, "privkey.pem"), 0o640, when)
		wantMode(t, bundleB, 0o640, when)
	}
	loosen := func() {
		t.Helper()
		for _, p := range []string{filepath.Join(dirA, "privkey.pem"), filepath.Join(dirB, "privkey.pem"), bundleB} {
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, r := range pass(t, a, PassOptions{}) {
		if r.Action != status.Obtained || !r.OK() {
			t.Fatalf("first pass: %+v", r)
		}
	}
	checkStoreModes(t, root, "after issuance")
	targets("after issuance")

	loosen()
	for _, r := range pass(t, a, PassOptions{Force: true}) {
		if r.Action != status.Renewed || !r.OK() {
			t.Fatalf("forced renewal: %+v", r)
		}
	}
	checkStoreModes(t, root, "after renewal")
	targets("after renewal")

	// The deploy of the live version is redone (as after a crash between
	// install and deploy, or a failed hook): the copies are written again.
	loosen()
	for _, name := range []string{"a", "b"} {
		st, err := a.Store().LoadState(name)
		if err != nil {
			t.Fatal(err)
		}
		st.AppliedSerial = ""
		if err := a.Store().SaveState(name, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range pass(t, a, PassOptions{}) {
		if r.Action != status.Applied || !r.OK() {
			t.Fatalf("redeploy: %+v", r)
		}
	}
	checkStoreModes(t, root, "after the deploy was redone")
	targets("after the deploy was redone")
}
