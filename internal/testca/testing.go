package testca

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// StartT starts a CA for one test (or one package's tests), stopped by
// t.Cleanup. Pebble is a pinned tool dependency, so this never skips: a CA
// that will not start fails the test with the servers' output.
func StartT(t testing.TB, o Options) *CA { return startT(t, o, "Pebble", Start) }

// StartStepCAT starts a step-ca for one test, stopped by t.Cleanup (see
// StartT). step-ca is a pinned tool dependency: this never skips.
func StartStepCAT(t testing.TB, o Options) *CA { return startT(t, o, "step-ca", StartStepCA) }

// FreePortT is FreePort for a test: a port outside the kernel's ephemeral
// range that was free a moment ago; no port fails the test.
func FreePortT(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startT(t testing.TB, o Options, name string, start func(context.Context, Options) (*CA, error)) *CA {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	var buf syncBuffer
	if o.Log == nil {
		o.Log = &buf
	}
	ca, err := start(context.Background(), o)
	if err != nil {
		t.Fatalf("start %s: %v\n%s", name, err, buf.String())
	}
	t.Cleanup(func() {
		ca.Stop()
		if t.Failed() && buf.Len() > 0 {
			t.Logf("CA output:\n%s", buf.String())
		}
	})
	return ca
}

// ReadOnlyDir is an empty directory nobody can write, not even root: a
// read-only tmpfs when running as root (CI), else a directory without
// write permission. Unmounted by t.Cleanup.
func ReadOnlyDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return dir
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
