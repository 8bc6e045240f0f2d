package agent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/store/disktest"
	"github.com/renewer/renewer/internal/testca"
)

// TestDiskErrors renews a certificate from Pebble while the disk fails
// (ENOSPC or EIO) at one point of writing the new version: the key file,
// the live link switch, the install target nginx reads, and everything at
// once (certificate file and state file). Each time: the previous
// certificate and key stay where nginx reads them, byte-identical, parsing
// and matching, with no partial or temp file beside them; the result and
// the state (or, when the state cannot be written, the agent's memory of
// it) carry the errno; the next pass backs off instead of ordering again;
// the pass after the backoff, on a healthy disk, completes the renewal.
func TestDiskErrors(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	target, hooks := filepath.Join(dir, "nginx", "ssl"), filepath.Join(dir, "hooks")
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["disk.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  install { dir = %q }
  hook "reload" { command = ["/bin/sh", "-c", "echo $RENEWER_SERIAL >> %s"] }
}`, ca.HTTPPort, target, hooks))
	disk := disktest.New()
	st, err := store.OpenFS(cfg.Storage.Path, cfg.Storage.KeepVersions, disk)
	if err != nil {
		t.Fatal(err)
	}
	a.store = st
	clock := time.Now()
	a.now = func() time.Time { return clock }

	res := pass(t, a, PassOptions{})
	if res[0].Action != status.Obtained || !res[0].OK() {
		t.Fatalf("first issuance: %+v", res[0])
	}
	nginx := func() []byte {
		return snapshot(t, filepath.Join(target, store.KeyFile), filepath.Join(target, store.CertFile),
			filepath.Join(target, store.ChainFile), filepath.Join(target, store.FullchainFile))
	}

	for _, tc := range []struct {
		name      string
		faults    []disktest.Fault
		installed bool // the store's live version changes (only the copy to the target fails)
		noState   bool // the state file cannot be written either
	}{
		{name: "key file, disk full after 64 bytes", faults: []disktest.Fault{{Op: disktest.Write, Path: "/certs/www/.tmp-", After: 64, Err: syscall.ENOSPC}}},
		{name: "live link switch", faults: []disktest.Fault{{Op: disktest.Rename, Path: "/live/www", Err: syscall.EIO}}},
		{name: "install target", installed: true, faults: []disktest.Fault{{Op: disktest.Write, Path: target + "/.", After: 100, Err: syscall.ENOSPC}}},
		{name: "cert file and state file", noState: true, faults: []disktest.Fault{
			{Op: disktest.Write, Path: "/" + store.CertFile, Err: syscall.ENOSPC},
			{Op: disktest.Create, Path: "/state/", Err: syscall.ENOSPC},
		}},
	} {
		errno := tc.faults[0].Err.Error()
		live, err := a.liveFacts("www")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := a.Store().Live("www")
		storeBefore, nginxBefore := snapshot(t, v.Key, v.Cert, v.Chain, v.Fullchain), nginx()
		stateBefore, _ := os.ReadFile(filepath.Join(cfg.Storage.Path, "state", "www.json"))
		hooksBefore, _ := os.ReadFile(hooks)
		versions, _ := a.Store().Versions("www")

		// Due: the CA asks for a replacement (a renewal window in the
		// past), seen once the stored window is stale.
		leaf, _ := os.ReadFile(v.Cert)
		past := time.Now().Add(-time.Hour).UTC()
		window := fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`, past.Format(time.RFC3339), past.Add(time.Minute).Format(time.RFC3339))
		if err := ca.Post("/set-renewal-info/", map[string]string{"Certificate": string(leaf), "ARIResponse": window}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(7 * time.Hour)
		disk.Fail(tc.faults...)
		res := pass(t, a, PassOptions{})[0]
		switch {
		case tc.installed:
			if res.Action != status.Renewed || len(res.HookErrs) != 1 || !strings.Contains(res.HookErrs[0].Error(), errno) {
				t.Fatalf("%s: result %+v, want renewed with the install step failed (%s)", tc.name, res, errno)
			}
		case res.Action != status.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), errno):
			t.Fatalf("%s: result %+v, want failed with %q", tc.name, res, errno)
		}
		if tc.noState != (res.StoreErr != nil) {
			t.Errorf("%s: StoreErr = %v", tc.name, res.StoreErr)
		}

		// Where nginx reads: the old pair, whole, matching, and nothing else.
		if !equalBytes(nginx(), nginxBefore) {
			t.Errorf("%s: the files nginx reads changed", tc.name)
		}
		if entries, _ := os.ReadDir(target); len(entries) != 4 {
			t.Errorf("%s: %d entries in the install target, want 4 (a partial or temp file left?)", tc.name, len(entries))
		}
		if f, err := certinfo.Load(filepath.Join(target, store.FullchainFile), filepath.Join(target, store.KeyFile)); err != nil || !f.KeyMatches || f.Serial != live.Serial {
			t.Errorf("%s: install target after the failure: %v (want serial %s, key matching)", tc.name, err, live.Serial)
		}
		if hooksNow, _ := os.ReadFile(hooks); !equalBytes(hooksNow, hooksBefore) {
			t.Errorf("%s: a hook ran after a failed write", tc.name)
		}
		if !tc.installed {
			v2, err := a.Store().Live("www")
			if err != nil || v2.ID != v.ID || !equalBytes(snapshot(t, v.Key, v.Cert, v.Chain, v.Fullchain), storeBefore) {
				t.Errorf("%s: the store's live version changed: %v, %v", tc.name, v2, err)
			}
			if now, _ := a.Store().Versions("www"); len(now) != len(versions) {
				t.Errorf("%s: versions %v, before %v: the failed one was left", tc.name, now, versions)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(cfg.Storage.Path, "*", "*", ".*")); len(leftovers) > 0 {
				t.Errorf("%s: temp files left: %v", tc.name, leftovers)
			}
		}

		// The failure is recorded with the errno: in the state file, or
		// in memory when the disk refuses the state file too.
		stNow, _ := a.loadState("www")
		if !strings.Contains(stNow.LastError, errno) || stNow.Failures != 1 || !stNow.NextAttempt.After(clock) {
			t.Errorf("%s: state %+v, want one failure with %q and a retry time", tc.name, stNow, errno)
		}
		onDisk, _ := os.ReadFile(filepath.Join(cfg.Storage.Path, "state", "www.json"))
		if tc.noState && !equalBytes(onDisk, stateBefore) {
			t.Errorf("%s: state file changed on a full disk", tc.name)
		}

		// The next pass backs off: no new order while the disk is failing.
		if res := pass(t, a, PassOptions{}); res[0].Action != status.Waiting || !strings.Contains(res[0].Err.Error(), errno) {
			t.Errorf("%s: pass right after the failure: %+v, want backing off", tc.name, res[0])
		}

		// The disk is healthy again: the pass after the backoff completes.
		disk.Heal()
		clock = stNow.NextAttempt.Add(time.Second)
		res = pass(t, a, PassOptions{})[0]
		want := status.Renewed
		if tc.installed {
			want = status.Applied // the renewed certificate is deployed, not ordered again
		}
		if res.Action != want || !res.OK() {
			t.Fatalf("%s: pass on a healthy disk: %+v, want %s", tc.name, res, want)
		}
		f, err := certinfo.Load(filepath.Join(target, store.FullchainFile), filepath.Join(target, store.KeyFile))
		if err != nil || !f.KeyMatches || f.Serial == live.Serial || f.Serial != res.Serial {
			t.Fatalf("%s: install target after healing: %v, serial %v (old %s, new %s)", tc.name, err, f, live.Serial, res.Serial)
		}
		if hooksNow, _ := os.ReadFile(hooks); !strings.Contains(string(hooksNow), res.Serial) {
			t.Errorf("%s: the hook did not see the new serial", tc.name)
		}
		stored, err := a.Store().LoadState("www")
		if err != nil || stored.AppliedSerial != res.Serial || stored.Failures != 0 || stored.LastError != "" {
			t.Errorf("%s: state file after healing: %+v, %v", tc.name, stored, err)
		}
		t.Logf("%s: %s injected, old certificate kept live and whole, renewed after healing (faults so far %v)", tc.name, errno, disk.Injected())
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// The ACME account files go through the store's file system too: a full
// disk while the account key is saved fails the first issuance with the
// disk's error and leaves no account half written; once the disk takes
// writes, the next pass registers and issues.
func TestDiskErrorAccountFiles(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["account-disk.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	disk := disktest.New()
	st, err := store.OpenFS(cfg.Storage.Path, cfg.Storage.KeepVersions, disk)
	if err != nil {
		t.Fatal(err)
	}
	a.store = st
	disk.Fail(disktest.Fault{Op: disktest.Write, Path: "/accounts/", Err: syscall.ENOSPC})
	res := pass(t, a, PassOptions{})[0]
	if res.Action != status.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("with the account directory full: %+v", res)
	}
	accounts := filepath.Join(cfg.Storage.Path, "accounts")
	_ = filepath.WalkDir(accounts, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a file was left in the account directory: %s", p)
		}
		return nil
	})
	disk.Heal()
	a.now = func() time.Time { return time.Now().Add(24 * time.Hour) } // past the backoff
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Obtained || !res[0].OK() {
		t.Fatalf("after the disk healed: %+v", res[0])
	}
}
