package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// Defect: after a kill -9 during a hook and a later successful deploy
// retry, status showed LAST RESULT "failed" beside HEALTH "ok", with
// failures 0 and installed_serial naming the previous certificate. The
// state now names the new serial before the deploy starts, and the retry
// leaves a consistent record.
func TestKillDuringHookThenRetry(t *testing.T) {
	t.Parallel()
	bin, err := buildRenewer()
	if err != nil {
		t.Fatal(err)
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	started, release := filepath.Join(dir, "hook-started"), filepath.Join(dir, "release")
	cfgFile := filepath.Join(dir, "renewer.hcl")
	// The hook blocks until the release file exists: the test kills
	// renewer while it waits.
	hookCmd := fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.05; done", started, release)
	src := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  accept_terms = true
}
certificate "k" {
  domains = ["kill.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  hook "slow" { command = ["/bin/sh", "-c", %q] }
}
`, ca.Directory, ca.CABundle, ca.HTTPPort, hookCmd)
	if err := os.WriteFile(cfgFile, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		out, err := exec.Command(bin, append([]string{"--config", cfgFile}, args...)...).Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	// A first certificate, applied (the hook released at once).
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run("renew"); code != 0 {
		t.Fatalf("first renew: exit %d\n%s", code, out)
	}
	// A failure on record, as a real host may have from an earlier outage.
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := st.LoadState("k")
	prev.Failed(time.Now().Add(-time.Hour), "an earlier failure", func(int) time.Time { return time.Now().Add(-time.Minute) })
	if err := st.SaveState("k", prev); err != nil {
		t.Fatal(err)
	}
	os.Remove(release)
	os.Remove(started)

	// A forced renewal, killed while its hook runs.
	cmd := exec.Command(bin, "--config", cfgFile, "renew", "--force")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := os.Stat(started); return err == nil }, "the hook to start")
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	v, err := st.Live("k")
	if err != nil {
		t.Fatal(err)
	}
	live, err := certinfo.Load(v.Fullchain, v.Key)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := st.LoadState("k"); s.InstalledSerial != live.Serial || s.AppliedSerial == live.Serial {
		t.Fatalf("state after the kill: %+v (live %s)", s, live.Serial)
	}

	// The next run retries the deploy (the hook now returns at once).
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run("renew", "k")
	if code != 0 || !strings.Contains(out, "deploy retried  serial "+live.Serial) {
		t.Fatalf("retry: exit %d\n%s", code, out)
	}
	code, out = run("status", "--json", "k")
	var rep cli.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Certificates) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	cs := rep.Certificates[0]
	if code != 0 || cs.Health != "ok" || cs.LastResult != store.ResultApplied || cs.Failures != 0 || cs.LastError != "" ||
		cs.InstalledSerial != live.Serial || cs.Serial != live.Serial || !cs.Applied {
		t.Fatalf("status after the retry: exit %d %+v", code, cs)
	}
	_, table := run("status")
	if strings.Contains(table, "failed") {
		t.Errorf("status table still says failed:\n%s", table)
	}
}
