package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/testca"
)

// builtOnce says whether buildRenewer ran (TestMain removes its directory).
var builtOnce atomic.Bool

// buildRenewer builds the real binary once per test run, as make build
// does (static, without symbol tables, which also links it faster).
var buildRenewer = sync.OnceValues(func() (string, error) {
	builtOnce.Store(true)
	dir, err := os.MkdirTemp("", "renewer-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "renewer")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startDaemon starts cmd (a `renewer run`), collecting what it writes to
// stderr and stdout into the returned lines; exited receives its exit. The
// daemon is killed when the test ends, if it is still running.
func startDaemon(t *testing.T, cmd *exec.Cmd) (log *lines, exited <-chan error) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log = &lines{}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			log.add(sc.Text())
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return log, done
}

type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) add(s string) { l.mu.Lock(); l.b.WriteString(s + "\n"); l.mu.Unlock() }
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lines) wait(t *testing.T, text string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(l.String(), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %s after %s; log:\n%s", text, d, l.String())
}

// The daemon as systemd runs it: the built binary, READY over
// NOTIFY_SOCKET, a `renew` typed while it works (no certificate issued
// twice), SIGHUP with a broken config (keeps running) and a good one (takes
// effect), and SIGTERM during an issuance (exit 0, store consistent).
func TestDaemonBinary(t *testing.T) {
	t.Parallel()
	bin, err := buildRenewer()
	if err != nil {
		t.Fatal(err)
	}
	ca := testca.StartT(t, testca.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "renewer.hcl")
	head := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  accept_terms = true
}
daemon { jitter = "0s" }
`, ca.Directory, ca.CABundle)
	cert := func(name string, n int) string {
		var d []string
		for i := range n {
			d = append(d, fmt.Sprintf("%q", fmt.Sprintf("%s%d.example.test", name, i)))
		}
		return fmt.Sprintf("certificate %q {\n  domains = [%s]\n  challenge \"http\" { listen = \"127.0.0.1:%d\" }\n}\n", name, strings.Join(d, ", "), ca.HTTPPort)
	}
	write := func(body string) {
		if err := os.WriteFile(cfgFile, []byte(head+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cert("a", 1) + cert("b", 2) + cert("c", 1))

	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			select { // keep reading even when nobody listens: a full socket would block the daemon
			case notes <- string(buf[:n]):
			default:
			}
		}
	}()

	daemon := exec.Command(bin, "run", "--config", cfgFile, "--log-format", "json")
	daemon.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	log, exited := startDaemon(t, daemon)

	select {
	case n := <-notes:
		if n != "READY=1" {
			t.Fatalf("first notification %q", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no READY=1 from the daemon")
	}

	// The watchdog is pinged every half interval.
	watchdog := time.After(10 * time.Second)
	for pinged := false; !pinged; {
		select {
		case n := <-notes:
			pinged = n == "WATCHDOG=1"
		case <-watchdog:
			t.Fatal("no WATCHDOG=1 within 10s with WATCHDOG_USEC=400000")
		}
	}

	// A renew typed while the daemon issues the same certificates.
	out, err := exec.Command(bin, "renew", "--config", cfgFile).CombinedOutput()
	if err != nil {
		t.Fatalf("renew beside the daemon: %v\n%s", err, out)
	}
	st, err := store.Open(filepath.Join(dir, "state"), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		waitFor(t, func() bool { _, err := st.Live(name); return err == nil }, name+" live")
	}
	log.wait(t, `"msg":"next wake-up"`, 30*time.Second)
	for _, name := range []string{"a", "b", "c"} {
		if v, _ := st.Versions(name); len(v) != 1 {
			t.Errorf("%s issued %d times with the daemon and renew side by side, want once", name, len(v))
		}
	}

	// SIGHUP with a broken file: logged with file:line:column, still running.
	if err := os.WriteFile(cfgFile, []byte(head+cert("a", 1)+"certificate \"d\" {\n  domain = [\"d.example.test\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, "config reload failed; keeping the running config", 30*time.Second)
	log.wait(t, "renewer.hcl:13:3: Unsupported argument", time.Second)
	if err := daemon.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("daemon died after a broken reload: %v", err)
	}

	// SIGHUP with a good file: the new certificate is obtained.
	write(cert("a", 1) + cert("b", 2) + cert("c", 1) + cert("d", 1))
	daemon.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { _, err := st.Live("d"); return err == nil }, "d live after reload")

	// SIGTERM while a certificate is being issued: the issuance finishes
	// within the grace period, the daemon exits 0, the store is consistent.
	write(cert("a", 1) + cert("b", 2) + cert("c", 1) + cert("d", 1) + cert("e", 3))
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, `"msg":"renewing","cert":"e"`, 30*time.Second)
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not stop within 60s of SIGTERM")
	}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		// e was under way at SIGTERM: the default 30s grace lets it finish.
		v, err := st.Live(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := certinfo.Load(v.Fullchain, v.Key)
		if err != nil || !f.KeyMatches {
			t.Errorf("%s after SIGTERM: %v %+v", name, err, f)
		}
		if _, err := st.LoadState(name); err != nil {
			t.Errorf("%s state: %v", name, err)
		}
	}
	if !strings.Contains(log.String(), `"msg":"renewer daemon stopped"`) {
		t.Errorf("no clean stop logged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, bin, "renew", "--config", cfgFile).Run(); err != nil {
		t.Errorf("renew after the daemon stopped: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
