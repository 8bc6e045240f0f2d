package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// crashKills is how many times TestCrashSafety SIGKILLs `renewer renew
// --force` (runs that finish before their kill do not count); `make soak`
// raises it with RENEWER_CRASH_KILLS.
func crashKills(t *testing.T) int {
	if s := os.Getenv("RENEWER_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RENEWER_CRASH_KILLS=%q", s)
		}
		return n
	}
	return 20
}

// TestCrashSafety kills `renewer renew --force` with SIGKILL at random
// moments while it obtains, installs and deploys certificates from Pebble.
// After every kill each live certificate and key parse, match and are
// unexpired and every state file is readable; a final run completes what
// was half done (every certificate live, its hooks applied).
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	bin, err := buildRenewer()
	if err != nil {
		t.Fatal(err)
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "renewer.hcl")
	names := []string{"a", "b", "c"}
	var src strings.Builder
	fmt.Fprintf(&src, "storage {\n  path = \"state\"\n  keep_versions = 2\n}\nacme {\n  directory = %q\n  ca_bundle = %q\n  accept_terms = true\n}\n", ca.Directory, ca.CABundle)
	for _, n := range names {
		fmt.Fprintf(&src, `certificate %q {
  domains = ["%s.crash.example.test", "www.%s.crash.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
  hook "record" { command = ["/bin/sh", "-c", "echo $RENEWER_SERIAL >> %s"] }
}
`, n, n, n, ca.HTTPPort, filepath.Join(dir, n+".hooks"))
	}
	if err := os.WriteFile(cfgFile, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "state"), 2)
	if err != nil {
		t.Fatal(err)
	}

	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	kills, killed, before, checked := crashKills(t), 0, 0, 0
	for i := 0; killed < kills; i++ {
		cmd := exec.Command(bin, "renew", "--force", "--config", cfgFile)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Most kills land inside an order (which takes a few seconds),
		// some in the first milliseconds.
		delay := time.Duration(rnd.Int64N(int64(4 * time.Second)))
		if rnd.IntN(4) == 0 {
			delay = time.Duration(rnd.Int64N(int64(50 * time.Millisecond)))
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited: // finished before the kill: a complete run, also fine
			before++
		case <-time.After(delay):
			cmd.Process.Kill()
			<-exited
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				killed++
			} else {
				before++ // it finished as the kill was sent
			}
		}
		checked += checkStore(t, st, names, fmt.Sprintf("after run %d (kill %d at %s)", i+1, killed, delay))
	}
	t.Logf("%d kills, %d runs finished before their kill", killed, before)

	out, err := exec.Command(bin, "renew", "--config", cfgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("run after the kills: %v\n%s", err, out)
	}
	for _, n := range names {
		v, err := st.Live(n)
		if err != nil {
			t.Fatalf("%s not live after the final run: %v", n, err)
		}
		f, _ := certinfo.Load(v.Fullchain, v.Key)
		s, _ := st.LoadState(n)
		if s.AppliedSerial != f.Serial {
			t.Errorf("%s: hooks not applied for the live serial %s (state %+v)", n, f.Serial, s)
		}
		hooks, _ := os.ReadFile(filepath.Join(dir, n+".hooks"))
		if !strings.Contains(string(hooks), f.Serial) {
			t.Errorf("%s: the hook never saw the live serial %s", n, f.Serial)
		}
	}
	if !t.Failed() {
		t.Logf("crash summary: %d kills survived: %d runs of renew --force, %d killed by SIGKILL at random moments, %d finished first; "+
			"%d live certificate+key pairs checked after them, all whole, matching and valid, every state file readable; the final run applied every certificate",
			killed, killed+before, killed, before, checked)
	}
}

// checkStore asserts that whatever is live is whole; it returns how many
// live pairs it checked.
func checkStore(t *testing.T, st *store.Store, names []string, when string) (live int) {
	t.Helper()
	for _, n := range names {
		if _, err := st.LoadState(n); err != nil {
			t.Fatalf("%s: state of %s unreadable: %v", when, n, err)
		}
		v, err := st.Live(n)
		if err != nil {
			continue // not issued yet
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil {
			t.Fatalf("%s: live %s broken: %v", when, n, err)
		}
		if err := f.Check([]string{n + ".crash.example.test", "www." + n + ".crash.example.test"}, time.Now()); err != nil {
			t.Fatalf("%s: live %s invalid: %v", when, n, err)
		}
		live++
	}
	return live
}
