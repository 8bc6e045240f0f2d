package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/cli"
	"github.com/renewer/renewer/internal/testca"
	"github.com/renewer/renewer/internal/verify"
)

// need returns the path of a program the test needs. Without it the test is
// skipped, loudly, unless CI is set: then it fails, so CI never passes by
// skipping.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: install it (apt-get install -y %s) to run this end-to-end test", prog, pkg)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this test must not be skipped", msg)
	}
	t.Skipf("SKIPPED: %s (CI is unset, so skipping instead of failing)", msg)
	return ""
}

// repoFile is the absolute path of a file in the repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renewer runs the renewer command line in-process, as a user would type it.
func renewer(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(context.Background(), deps, args, &out, &errOut)
	t.Logf("$ renewer %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// status runs `renewer status --json NAME` and returns the certificate's entry.
func status(t *testing.T, config, name string) (int, cli.CertStatus) {
	t.Helper()
	code, out, _ := renewer(t, "--config", config, "status", "--json", name)
	var rep cli.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Certificates) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return code, rep.Certificates[0]
}

// served is the serial of the leaf served at addr for SNI name.
func served(t *testing.T, addr, name string) string {
	t.Helper()
	var last error
	for range 50 {
		c, err := verify.Served(context.Background(), addr, name)
		if err == nil {
			return certinfo.FormatSerial(c.SerialNumber)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing served at %s: %v", addr, last)
	return ""
}

// waitServed waits (10s at most) until addr serves the serial want for SNI
// name, as after a reload that renewer did not verify; it returns what is
// served last.
func waitServed(t *testing.T, addr, name, want string) string {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = served(t, addr, name); got == want {
			break
		}
	}
	return got
}

// serialOf reads a PEM certificate file's leaf serial.
func serialOf(t *testing.T, path string) string {
	t.Helper()
	f, err := certinfo.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return f.Serial
}

func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	f, err := certinfo.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return f.Leaf
}

// daemon is a server process started by a test and stopped at its end.
type daemon struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// start runs argv in the foreground of the test (its own process group),
// waits until addr accepts connections, and stops it at cleanup with sig.
func start(t *testing.T, addr string, sig syscall.Signal, argv ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(argv[0], argv[1:]...), out: &bytes.Buffer{}, done: make(chan error, 1)}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(sig)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", argv[0], d.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-d.done:
			t.Fatalf("%s exited early: %v\n%s", argv[0], err, d.out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s\n%s", argv[0], addr, d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caConfig is the storage and acme part of a renewer config for ca.
func caConfig(ca *testca.CA, storage string) string {
	return fmt.Sprintf(`storage { path = %q }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true
}
`, storage, ca.Directory, ca.CABundle)
}

// hclList writes strings as an HCL list literal.
func hclList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
