package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// installedBy counts, per certificate, the "certificate installed" lines of
// a JSON log.
func installedBy(log string) map[string]int {
	n := map[string]int{}
	for line := range strings.Lines(log) {
		var rec struct{ Msg, Cert string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "certificate installed" {
			n[rec.Cert]++
		}
	}
	return n
}

// The daemon, forced and plain `renew` processes and SIGHUP reloads, all at
// once, against a real Pebble, with the race detector in every process
// (this test binary runs as "renewer"; make test builds it with -race):
// no data race anywhere, no certificate issued more than once per forced
// request (the per-certificate lock serializes the processes, and a
// process that waited for it checks again), every issuance accounted for
// by a version on disk, every live certificate whole, and the daemon
// still healthy afterwards.
func TestConcurrentDaemonRenewReload(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("renewer") // this test binary, put on $PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	if !raceEnabled {
		t.Log("not built with -race: no data race can be detected in this run (make test builds with -race)")
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	// DNS-01 through lego's exec provider and challtestsrv: no port to
	// share, so several processes can answer challenges at once.
	script := filepath.Join(dir, "dns.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
case "$1" in
present) curl -sf -X POST -d "{\"host\":\"$2\",\"value\":\"$3\"}" %[1]s/set-txt ;;
cleanup) curl -sf -X POST -d "{\"host\":\"$2\"}" %[1]s/clear-txt ;;
esac
`, ca.ChallAPI)), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "renewer.hcl")
	head := fmt.Sprintf(`storage {
  path          = "state"
  keep_versions = 100
}
acme {
  directory    = %q
  ca_bundle    = %q
  accept_terms = true
}
daemon { jitter = "0s" }
`, ca.Directory, ca.CABundle)
	cert := func(name string) string {
		return fmt.Sprintf(`certificate %q {
  domains = ["%s.race.example.test"]
  challenge "dns" {
    provider            = "exec"
    env                 = { EXEC_PATH = %q, EXEC_SEQUENCE_INTERVAL = "1" }
    resolvers           = [%q]
    polling_interval    = "200ms"
    propagation_timeout = "30s"
  }
}
`, name, name, script, ca.DNSAddr)
	}
	write := func(names ...string) {
		t.Helper()
		src := head
		for _, n := range names {
			src += cert(n)
		}
		if err := os.WriteFile(cfgFile, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := []string{"c0", "c1", "c2", "c3"}
	write(first...)

	daemon := exec.Command(bin, "--config", cfgFile, "--log-format", "json", "run")
	daemon.Dir = dir
	daemonLog, exited := startDaemon(t, daemon)

	st, err := store.Open(filepath.Join(dir, "state"), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range first {
		waitFor(t, func() bool { _, err := st.Live(n); return err == nil }, n+" issued by the daemon")
	}
	daemonLog.wait(t, `"msg":"next wake-up"`, 60*time.Second)

	// The storm: forced renewals of overlapping sets, plain renewals,
	// and reloads that add a certificate the processes race to obtain.
	type proc struct {
		args   []string
		forced []string // certificates this request forces
		out    string
		err    error
	}
	all := append(first, "c4")
	procs := []*proc{
		{args: []string{"renew", "--force", "c0", "c1"}, forced: []string{"c0", "c1"}},
		{args: []string{"renew", "--force", "c1", "c2"}, forced: []string{"c1", "c2"}},
		{args: []string{"renew", "--force"}, forced: all},
		{args: []string{"renew", "--force", "c3"}, forced: []string{"c3"}},
		{args: []string{"renew"}},
		{args: []string{"renew"}},
	}
	write(all...) // c4 is new: the daemon gets it on SIGHUP
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 150 * time.Millisecond)
			cmd := exec.CommandContext(ctx, bin, append([]string{"--config", cfgFile, "--log-format", "json"}, p.args...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			p.out, p.err = string(out), err
		})
	}
	for range 3 {
		if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
	}
	wg.Wait()

	for _, p := range procs {
		if strings.Contains(p.out, "DATA RACE") {
			t.Errorf("renewer %s: data race:\n%s", strings.Join(p.args, " "), p.out)
		}
		if p.err != nil {
			t.Errorf("renewer %s: %v\n%s", strings.Join(p.args, " "), p.err, p.out)
		}
	}
	waitFor(t, func() bool { _, err := st.Live("c4"); return err == nil }, "c4 live")
	// The daemon is still healthy: it answers one more reload and settles.
	reloads := strings.Count(daemonLog.String(), `"msg":"config reloaded"`)
	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Count(daemonLog.String(), `"msg":"config reloaded"`) > reloads }, "a reload after the storm")
	if reloads < 1 {
		t.Errorf("no reload took effect during the storm:\n%s", daemonLog.String())
	}
	time.Sleep(time.Second) // the pass after the last reload
	if out, err := exec.Command(bin, "--config", cfgFile, "status").CombinedOutput(); err != nil {
		t.Errorf("status after the storm: %v\n%s", err, out)
	}
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("daemon did not stop after SIGTERM")
	}
	if strings.Contains(daemonLog.String(), "DATA RACE") {
		t.Errorf("daemon: data race:\n%s", daemonLog.String())
	}

	// Issuances: every one is a version on disk, each forced request
	// renewed each of its certificates once, and the unforced ones (the
	// daemon, plain renews) obtained only c4, which was missing, once.
	issued := installedBy(daemonLog.String())
	unforced := installedBy(daemonLog.String())
	forced := map[string]int{}
	for _, p := range procs {
		n := installedBy(p.out)
		for c, k := range n {
			issued[c] += k
			if len(p.forced) == 0 {
				unforced[c] += k
			}
		}
		for _, c := range p.forced {
			forced[c]++
			if n[c] != 1 {
				t.Errorf("renewer %s installed %s %d times, want once", strings.Join(p.args, " "), c, n[c])
			}
		}
		for c, k := range n {
			if len(p.forced) > 0 && !strings.Contains(" "+strings.Join(p.forced, " ")+" ", " "+c+" ") {
				t.Errorf("renewer %s installed %s (%d times), which it did not force", strings.Join(p.args, " "), c, k)
			}
		}
	}
	for _, c := range all {
		ids, err := st.Versions(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != issued[c] {
			t.Errorf("%s: %d versions on disk, %d installations logged", c, len(ids), issued[c])
		}
		wantUnforced := 1 // c0..c3: the daemon's first issuance, before the storm
		if c == "c4" && unforced[c] > 1 {
			t.Errorf("c4 was obtained %d times without force, want at most once", unforced[c])
		}
		if c != "c4" && unforced[c] != wantUnforced {
			t.Errorf("%s was installed %d times without force, want %d", c, unforced[c], wantUnforced)
		}
		if max := forced[c] + 1; len(ids) > max {
			t.Errorf("%s: %d versions for %d forced requests", c, len(ids), forced[c])
		}
		// Every version, and the live one, is a whole pair.
		for _, id := range ids {
			v := filepath.Join(st.Root(), "certs", c, id)
			f, err := certinfo.Load(filepath.Join(v, store.FullchainFile), filepath.Join(v, store.KeyFile))
			if err != nil || !f.KeyMatches || f.VerifyChain() != nil {
				t.Errorf("%s version %s is not whole: %v", c, id, err)
			}
		}
		live, err := st.Live(c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if f, err := certinfo.Load(live.Fullchain, live.Key); err != nil || !f.KeyMatches {
			t.Errorf("%s live pair: %v", c, err)
		}
	}
	t.Logf("issued %v (forced requests %v); %d reloads during the storm; race detector %v", issued, forced, reloads, raceEnabled)
}
