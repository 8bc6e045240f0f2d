package hosttest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// need returns the path of a program the test needs; without it the test
// skips when CI is unset and fails when it is set.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(d, prog)); err == nil {
			return filepath.Join(d, prog)
		}
	}
	msg := fmt.Sprintf("%s not found: install it (apt-get install -y %s) to run the systemd host test", prog, pkg)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this test must not be skipped", msg)
	}
	t.Skipf("SKIPPED: %s (CI is unset, so skipping instead of failing)", msg)
	return ""
}

// container is this machine's system booted under systemd-nspawn on an
// overlay of / whose writes go to a tmpfs.
type container struct {
	t    *testing.T
	ctx  context.Context
	Root string // the overlay, as the host sees it: ROOT/etc is the container's /etc
	pid  int    // the container's systemd (PID 1 inside)
	log  string // systemd-nspawn's output (the console)
}

// boot starts the container and waits until its system is running. Cleanup
// (registered here, run also when the test fails or times out) stops it and
// unmounts the overlay and the tmpfs.
func boot(ctx context.Context, t *testing.T) *container {
	t.Helper()
	nspawn := need(t, "systemd-nspawn", "systemd-container")
	base, err := os.MkdirTemp("", "renewer-host-")
	if err != nil {
		t.Fatal(err)
	}
	mounted := 0
	t.Cleanup(func() {
		// Only once nothing is mounted there: never walk into the overlay.
		if mounted == 0 {
			os.RemoveAll(base)
		} else {
			t.Errorf("%s left in place: still mounted", base)
		}
	})
	up, root := filepath.Join(base, "up"), filepath.Join(base, "root")
	for _, d := range []string{up, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", up, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	mounted++
	t.Cleanup(func() {
		if unmount(t, up) {
			mounted--
		}
	})
	for _, d := range []string{"u", "w"} {
		if err := os.Mkdir(filepath.Join(up, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s/u,workdir=%s/w", up, up)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	mounted++
	t.Cleanup(func() {
		if unmount(t, root) {
			mounted--
		}
	})

	c := &container{t: t, ctx: ctx, Root: root, log: filepath.Join(base, "console.log")}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nspawn, "-D", root, "--register=no", "--keep-unit", "--private-network", "-b", "--", "systemd.firstboot=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	// Registered after the unmounts, so it runs before them.
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // nspawn asks the container to power off
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Logf("container did not stop in 30s: killing systemd-nspawn")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(c.log); err == nil {
				t.Logf("container console (last 3000 bytes):\n%s", tail(string(b), 3000))
			}
		}
	})
	// Kill the container when the test's context ends (its time is up).
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-done:
		}
	}()

	deadline := time.Now().Add(90 * time.Second)
	for c.pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no systemd under systemd-nspawn (pid %d) after 90s", cmd.Process.Pid)
		}
		// The container's systemd, not the short-lived helper nspawn forks
		// first (a busy machine shows that one long enough to be seen).
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		for _, f := range strings.Fields(string(b)) {
			if comm, _ := os.ReadFile("/proc/" + f + "/comm"); strings.TrimSpace(string(comm)) == "systemd" {
				c.pid, _ = strconv.Atoi(f)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		out, _ := c.exec("systemctl", "is-system-running")
		state := strings.TrimSpace(out)
		if state == "running" {
			break
		}
		if state == "degraded" {
			failed, _ := c.exec("systemctl", "--failed", "--no-legend")
			t.Logf("container is degraded: %s", failed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not running after 90s: %q", state)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The image's policy-rc.d (a Docker habit) refuses every service start
	// from maintainer scripts; a real host has none.
	c.must("rm", "-f", "/usr/sbin/policy-rc.d")
	return c
}

// unmount unmounts dir, lazily if it stays busy; it reports success.
func unmount(t *testing.T, dir string) bool {
	for i := 0; i < 50; i++ {
		err := unix.Unmount(dir, 0)
		if err == nil || err == unix.EINVAL { // EINVAL: not mounted
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Errorf("unmount %s: %v", dir, err)
		return false
	}
	return true
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// exec runs a command inside the container (all its namespaces) and
// returns its combined output.
func (c *container) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.pid), "-a"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), err
}

// must runs a command inside the container and fails the test if it fails.
func (c *container) must(args ...string) string {
	c.t.Helper()
	out, err := c.exec(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// sh runs a shell command line inside the container.
func (c *container) sh(line string) (string, error) { return c.exec("/bin/sh", "-c", line) }

// path is a container path as the host sees it.
func (c *container) path(p string) string { return filepath.Join(c.Root, p) }

// write writes a file inside the container. It goes through the
// container (never through the overlay's path on the host): a symbolic link
// such as /etc/nginx/sites-enabled/default -> /etc/nginx/sites-available/default
// must resolve inside the container, not on the host.
func (c *container) write(p, content string, mode os.FileMode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.pid), "-a", "/bin/sh", "-c",
		`mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"`, "sh", p, fmt.Sprintf("%o", mode.Perm()))
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("write %s in the container: %v\n%s", p, err, out)
	}
}

// read reads a file inside the container ("" when it cannot).
func (c *container) read(p string) string {
	out, err := c.exec("cat", p)
	if err != nil {
		return ""
	}
	return out
}

// show is one property of a unit.
func (c *container) show(unit, prop string) string {
	out, _ := c.exec("systemctl", "show", "--value", "--property="+prop, unit)
	return strings.TrimSpace(out)
}

// journal is a unit's journal since the cursor-less start of the boot.
func (c *container) journal(unit string) string {
	out, _ := c.exec("journalctl", "--no-pager", "-o", "cat", "-u", unit)
	return out
}

// inNet runs f with the calling thread in the container's network
// namespace: sockets it opens live there (its loopback is private).
func (c *container) inNet(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", c.pid))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns: %w", err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last: %s", what, d, last)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
