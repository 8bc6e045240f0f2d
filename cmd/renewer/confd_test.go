package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// The daemon's reload (SIGHUP, what `systemctl reload renewer` sends) reads
// conf.d again: a file dropped in adds its certificate, a file removed
// removes its certificate, and a broken one is refused with its own
// file:line:column while the running config is kept.
func TestDaemonConfDReload(t *testing.T) {
	t.Parallel()
	bin, err := buildRenewer()
	if err != nil {
		t.Fatal(err)
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "renewer.hcl")
	confd := filepath.Join(dir, "conf.d")
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert := func(name string) string {
		return fmt.Sprintf("certificate %q {\n  domains = [%q]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n",
			name, name+".example.test", ca.HTTPPort)
	}
	write(cfgFile, fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  accept_terms = true
}
daemon { jitter = "0s" }
%s`, ca.Directory, ca.CABundle, cert("main")))
	write(filepath.Join(confd, "b.hcl"), cert("b"))

	daemon := exec.Command(bin, "run", "--config", cfgFile, "--log-format", "json")
	log, _ := startDaemon(t, daemon)
	log.wait(t, `"msg":"renewer daemon started","config":"`+cfgFile+`","confd_files":1,"certificates":2`, 30*time.Second)
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main", "b"} {
		waitFor(t, func() bool { _, err := st.Live(name); return err == nil }, name+" live")
	}
	log.wait(t, `"msg":"next wake-up"`, 30*time.Second)

	// A file added: its certificate is obtained after the reload.
	write(filepath.Join(confd, "c.hcl"), cert("c"))
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, `"msg":"config reloaded","config":"`+cfgFile+`","confd_files":2,"certificates":3`, 30*time.Second)
	waitFor(t, func() bool { _, err := st.Live("c"); return err == nil }, "c live after the reload")

	// A file removed: its certificate is no longer managed.
	if err := os.Remove(filepath.Join(confd, "b.hcl")); err != nil {
		t.Fatal(err)
	}
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, `"msg":"config reloaded","config":"`+cfgFile+`","confd_files":1,"certificates":2`, 30*time.Second)

	// A broken file: refused at its own file:line:column; the daemon keeps
	// running with the config it has.
	write(filepath.Join(confd, "d.hcl"), "daemon { check = \"@hourly\" }\n"+cert("d"))
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, "config reload failed; keeping the running config", 30*time.Second)
	log.wait(t, filepath.Join(confd, "d.hcl")+`:1:1: Global block in conf.d file`, time.Second)
	if err := daemon.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("daemon died after a broken reload: %v", err)
	}
	if strings.Count(log.String(), `"msg":"config reloaded"`) != 2 {
		t.Errorf("want two reloads taken, log:\n%s", log.String())
	}
	if _, err := st.Live("d"); err == nil {
		t.Errorf("d was issued from a refused config")
	}
}
